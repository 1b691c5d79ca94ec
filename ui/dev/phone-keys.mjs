// DEV and CI: the UI at the app's least size (390 x 844, a phone) driven
// with the keyboard alone, over the fake node, in headless Chromium. Every
// step reaches its control by Tab (or Shift+Tab) from where the focus is,
// and acts with Enter, Space, Escape or typing: no click. After each step
// the page must not scroll sideways (nothing wider than the screen) and the
// focused control must be on screen. Fails on the first step that cannot be
// done, on a page error, or on a control out of reach. The walk: onboarding,
// a message, a meet-up posted and answered, a DM from the message list, a DM
// not delivered yet sent again, search, settings, a private group made and
// written in, people nearby. Screenshots of each
// step go to artifacts/ui/keys-*.png. Runs in a private network namespace
// (ui/scripts/check), on 127.0.0.1 only.
//
//   node ui/dev/phone-keys.mjs

import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { createServer } from "vite";

const here = dirname(fileURLToPath(import.meta.url));
const uiDir = resolve(here, "..");
const out = resolve(uiDir, "../artifacts/ui");
mkdirSync(out, { recursive: true });

const PHONE = { width: 390, height: 844 };
/** Most Tab presses to reach one control: a screen with more is not usable by keyboard. */
const MAX_TABS = 60;

const server = await createServer({ root: uiDir, configFile: resolve(uiDir, "vite.config.ts"), server: { host: "127.0.0.1", port: 0, strictPort: false }, logLevel: "warn" });
await server.listen();
const base = `http://127.0.0.1:${server.httpServer.address().port}/dev/screens.html`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
});

/** Press Tab (or Shift+Tab) until `locator` has the focus. */
async function tabTo(page, locator, what, { back = false, exact = false } = {}) {
  const target = await locator.first().elementHandle({ timeout: 5000 }).catch(() => null);
  if (!target) throw new Error(`${what}: not on the page`);
  for (let i = 0; i < MAX_TABS; i++) {
    if (await target.evaluate((el, exact) => el === document.activeElement || (!exact && el.contains(document.activeElement)), exact)) return;
    await page.keyboard.press(back ? "Shift+Tab" : "Tab");
  }
  const at = await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 120));
  throw new Error(`${what}: not reached in ${MAX_TABS} ${back ? "Shift+Tab" : "Tab"} presses (focus is on ${at})`);
}

/** The page fits the phone's width, and the focused control is on screen. */
async function fits(page, step) {
  const { scroll, width, focus } = await page.evaluate(() => {
    const el = document.activeElement;
    const r = el && el !== document.body ? el.getBoundingClientRect() : null;
    return {
      scroll: document.documentElement.scrollWidth,
      width: window.innerWidth,
      focus: r ? { left: r.left, right: r.right, top: r.top, bottom: r.bottom } : null,
    };
  });
  if (scroll > width + 1) throw new Error(`${step}: the page is ${scroll} px wide on a ${width} px screen`);
  if (focus && (focus.right < 0 || focus.left > width || focus.bottom < 0 || focus.top > PHONE.height)) {
    throw new Error(`${step}: the focused control is off screen (${JSON.stringify(focus)})`);
  }
  await page.screenshot({ path: `${out}/keys-${step}.png` });
}

const steps = [];
const problems = [];
async function run(scene, walk) {
  const page = await browser.newPage({ viewport: PHONE, deviceScaleFactor: 1 });
  await page.route("**/*", (route) => (new URL(route.request().url()).hostname === "127.0.0.1" ? route.continue() : route.abort()));
  page.on("pageerror", (e) => problems.push(`${scene}: page error: ${e}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`${scene}: console: ${m.text()}`));
  await page.goto(`${base}?scene=${scene}`);
  await page.waitForSelector("#root > *");
  try {
    await walk(page, async (name) => {
      await fits(page, name);
      steps.push(name);
    });
  } finally {
    await page.close();
  }
}

let failed = false;
try {
  await run("onboarding", async (p, done) => {
    await tabTo(p, p.getByPlaceholder("Your name"), "the name field");
    await p.keyboard.type("Mia");
    await p.keyboard.press("Enter");
    await p.getByRole("img", { name: /QR code/ }).waitFor();
    await done("01-onboarding-code");
    await tabTo(p, p.getByRole("button", { name: "Start chatting" }), "Start chatting");
    await p.keyboard.press("Enter");
    await p.getByRole("textbox", { name: "Message" }).waitFor();
    await done("02-first-room");
  });

  await run("mobile", async (p, done) => {
    // A message, from the composer.
    await tabTo(p, p.getByRole("textbox", { name: "Message" }), "the message box");
    await p.keyboard.type("Heading to the lake");
    await p.keyboard.press("Enter");
    await p.locator("li.msg.mine", { hasText: "Heading to the lake" }).waitFor();
    await done("03-sent");
    // A meet-up: the pin beside the box, the form, Enter posts.
    await tabTo(p, p.getByRole("button", { name: "New meet-up" }), "the meet-up button", { back: true });
    await p.keyboard.press("Enter");
    await p.keyboard.type("the big wheel");
    await done("04-meetup-form");
    await p.keyboard.press("Enter");
    const card = p.getByRole("group", { name: /Meet at the big wheel/ }).last();
    await card.waitFor();
    await done("05-meetup-card");
    // Back to the list, into Main Stage, answer the card there.
    await tabTo(p, p.getByRole("button", { name: "Back to conversations" }), "Back to conversations", { back: true });
    await p.keyboard.press("Enter");
    await tabTo(p, p.getByRole("button", { name: /Main Stage/ }), "the Main Stage room");
    await p.keyboard.press("Enter");
    const stage = p.getByRole("group", { name: /Meet at the big wheel, left of/ });
    await stage.waitFor();
    await tabTo(p, stage.getByRole("button", { name: "Coming" }), "Coming on the card");
    await p.keyboard.press("Space");
    await stage.getByRole("button", { name: "Coming", pressed: true }).waitFor();
    await done("06-meetup-answered");
    // The message list is one stop: Home goes to its first message, Enter
    // opens a DM with its author.
    await tabTo(p, p.getByRole("log"), "the message list", { back: true, exact: true });
    await p.keyboard.press("Home");
    await p.keyboard.press("Enter");
    await p.getByRole("textbox", { name: "Message" }).and(p.getByPlaceholder("Write a sealed message")).waitFor();
    await done("06b-dm-from-the-list");
    // A DM not delivered yet, sent again.
    await tabTo(p, p.getByRole("button", { name: "Back to conversations" }), "Back to conversations", { back: true });
    await p.keyboard.press("Enter");
    await tabTo(p, p.getByRole("button", { name: /^Bo / }), "the DM with Bo");
    await p.keyboard.press("Enter");
    await p.getByText(/Not delivered yet: /).waitFor();
    await tabTo(p, p.getByRole("button", { name: "Try again" }), "Try again", { back: true });
    await p.keyboard.press("Enter");
    await p.getByText("Sent via LAN").waitFor();
    await done("07-dm-sent-again");
    // Search, from the list.
    await tabTo(p, p.getByRole("button", { name: "Back to conversations" }), "Back to conversations", { back: true });
    await p.keyboard.press("Enter");
    await tabTo(p, p.getByRole("searchbox", { name: "Search messages" }), "the search box", { back: true });
    await p.keyboard.type("sunscreen");
    const results = p.getByRole("region", { name: "Search results" });
    await results.getByRole("button").first().waitFor();
    await done("08-search");
    await tabTo(p, results.getByRole("button").first(), "the first result");
    await p.keyboard.press("Enter");
    await p.locator("li.msg.found").waitFor();
    await done("09-search-opened");
    // Settings, opened and closed.
    await tabTo(p, p.getByRole("button", { name: "Back to conversations" }), "Back to conversations", { back: true });
    await p.keyboard.press("Enter");
    await tabTo(p, p.getByRole("button", { name: "Settings" }), "Settings", { back: true });
    await p.keyboard.press("Enter");
    await p.getByRole("dialog", { name: "Settings" }).waitFor();
    await done("10-settings");
    await p.keyboard.press("Escape");
    await p.getByRole("dialog", { name: "Settings" }).waitFor({ state: "detached" });
    // A private group: made from the list (the search emptied first), a
    // message in it.
    await tabTo(p, p.getByRole("searchbox", { name: "Search messages" }), "the search box", { back: true });
    await p.keyboard.press("Control+A");
    await p.keyboard.press("Backspace");
    await tabTo(p, p.getByRole("button", { name: "New private group" }), "New private group");
    await p.keyboard.press("Enter");
    const dialog = p.getByRole("dialog", { name: "New private group" });
    await tabTo(p, dialog.getByLabel("Group name"), "the group name");
    await p.keyboard.type("Lake swim");
    await tabTo(p, dialog.getByRole("checkbox").first(), "the first person");
    await p.keyboard.press("Space");
    await done("11-new-group");
    await tabTo(p, dialog.getByRole("button", { name: "Make the group" }), "Make the group");
    await p.keyboard.press("Enter");
    await p.getByRole("heading", { name: "Lake swim" }).waitFor();
    await tabTo(p, p.getByRole("textbox", { name: "Message" }), "the group's message box");
    await p.keyboard.type("Meet at the jetty");
    await p.keyboard.press("Enter");
    await p.locator("li.msg.mine", { hasText: "Meet at the jetty" }).waitFor();
    await done("12-group");
    await tabTo(p, p.getByRole("button", { name: "Back to conversations" }), "Back to conversations", { back: true });
    await p.keyboard.press("Enter");
    // People nearby, opened and closed.
    await tabTo(p, p.getByRole("button", { name: "People nearby" }), "People nearby");
    await p.keyboard.press("Enter");
    await done("13-people");
  });
} catch (e) {
  failed = true;
  console.log(`FAIL ${String(e).split("\n")[0]}`);
} finally {
  await browser.close();
  await server.close();
}
for (const s of steps) console.log(`ok   keys-${s}`);
if (problems.length) console.log(problems.join("\n"));
process.exit(failed || problems.length ? 1 : 0);
