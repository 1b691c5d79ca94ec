// DEV ONLY: screenshots of the UI over the fake node (dev/fake-api.ts).
// Serves the app with Vite on 127.0.0.1 and drives headless Chromium; every
// request that is not for loopback is aborted. Output: artifacts/ui/*.png at
// the repository root (git-ignored).
//
//   node ui/dev/screens.mjs [scene-name ...]

import { mkdirSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { createServer } from "vite";

const here = dirname(fileURLToPath(import.meta.url));
const uiDir = resolve(here, "..");
const out = resolve(uiDir, "../artifacts/ui");
mkdirSync(out, { recursive: true });

const server = await createServer({ root: uiDir, configFile: resolve(uiDir, "vite.config.ts"), server: { host: "127.0.0.1", port: 0, strictPort: false }, logLevel: "warn" });
await server.listen();
const addr = server.httpServer.address();
const base = `http://127.0.0.1:${addr.port}/dev/screens.html`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
});

const desktop = { width: 1280, height: 800 };
const wide = { width: 1480, height: 860 };
const phone = { width: 390, height: 844 };

const shots = {
  "01-onboarding": { scene: "onboarding", view: desktop, run: async (p) => p.getByPlaceholder("Your name").fill("Mia") },
  "02-onboarding-code": {
    scene: "onboarding",
    view: desktop,
    run: async (p) => {
      await p.getByPlaceholder("Your name").fill("Mia");
      await p.getByRole("button", { name: "Continue" }).click();
      await p.getByText("Start chatting").waitFor();
    },
  },
  "03-onboarding-empty-name": {
    scene: "onboarding",
    view: desktop,
    run: async (p) => p.getByRole("button", { name: "Continue" }).click(),
  },
  "04-chat": { scene: "chat", view: desktop, run: async (p) => p.waitForTimeout(900) },
  "05-chat-people": {
    scene: "chat",
    view: wide,
    run: async (p) => {
      await p.getByRole("button", { name: "People nearby" }).click();
      await p.waitForTimeout(300);
    },
  },
  "06-dm": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: /Ana Souza/ }).first().click();
      await p.waitForTimeout(400);
    },
  },
  "07-message-too-long": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByLabel("Message", { exact: true }).fill("Lorem ipsum dolor sit amet, ".repeat(150));
      await p.getByLabel("Message", { exact: true }).press("Enter");
      await p.waitForTimeout(200);
    },
  },
  "08-send-fails-text-kept": {
    scene: "send-fails",
    view: desktop,
    run: async (p) => {
      await p.getByLabel("Message", { exact: true }).fill("Meet at the yellow flag at 22:00");
      await p.getByLabel("Message", { exact: true }).press("Enter");
      await p.getByText(/Not sent/).waitFor();
    },
  },
  "09-verify-bad-code": {
    scene: "chat",
    view: wide,
    run: async (p) => {
      await p.getByRole("button", { name: "People nearby" }).click();
      await p.getByLabel("Their code").fill("hello-this-is-not-a-code");
      await p.getByRole("button", { name: "Verify" }).click();
      await p.getByText(/not a Festival Chat code/).waitFor();
    },
  },
  "10-settings-bad-festival": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: "Settings" }).click();
      await p.getByLabel("Festival id").fill("Glasto 2026!");
      await p.getByRole("button", { name: "Save" }).click();
    },
  },
  "11-join-room": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: "Join or create a room" }).click();
      await p.getByLabel("Room name").fill("Camp Sunflower");
    },
  },
  "12-send-live": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByLabel("Message", { exact: true }).fill("Heading to the lake now 🌊");
      await p.getByLabel("Message", { exact: true }).press("Enter");
      await p.waitForTimeout(2200);
    },
  },
  "17-history-paged": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      const count = () => p.locator(".msg").count();
      await p.waitForTimeout(500);
      const before = await count();
      for (let i = 0; i < 6; i++) {
        await p.locator(".messages").evaluate((el) => (el.scrollTop = 0));
        await p.waitForTimeout(350);
      }
      const after = await count();
      if (!(after > before)) throw new Error(`scrolling up loaded nothing (${before} -> ${after})`);
      await p.getByText(/This is the start of Festival/).waitFor();
      console.log(`     history: ${before} -> ${after} messages after scrolling up`);
    },
  },
  "18-node-down": { scene: "node-down", view: desktop, run: async (p) => p.getByRole("alert").first().waitFor() },
  "19-dm-ana-paged": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: /Ana Souza/ }).first().click();
      await p.getByText("Coming over").waitFor();
      await p.getByLabel("Message", { exact: true }).fill("On my way to the taco stand 🌮");
      await p.getByLabel("Message", { exact: true }).press("Enter");
      await p.waitForTimeout(400);
    },
  },
  "20-dm-lookalike": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      // "Аna Souza" (a Cyrillic А) wrote first: her DM carries the warning, the real Ana the verified mark.
      await p.getByRole("navigation").getByRole("button", { name: /looks like another name/ }).click();
      await p.getByText(/Lost my wallet/).waitFor();
      await p.waitForTimeout(300);
    },
  },
  "21-settings-storage": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: "Settings" }).click();
      await p.getByLabel("Keep messages for (hours)").scrollIntoViewIfNeeded();
      await p.waitForTimeout(200);
    },
  },
  "22-settings-bad-storage": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: "Settings" }).click();
      await p.getByLabel("Storage for messages (MB)").fill("32");
      await p.getByLabel("Keep messages for (hours)").fill("2.5");
      await p.getByRole("button", { name: "Save" }).click();
      await p.getByLabel("Keep messages for (hours)").scrollIntoViewIfNeeded();
      await p.waitForTimeout(200);
    },
  },
  "23-onboarding-name-claims-verified": {
    scene: "onboarding",
    view: desktop,
    run: async (p) => {
      await p.getByPlaceholder("Your name").fill("Mia ✓ official");
      await p.getByRole("button", { name: "Continue" }).click();
      await p.getByRole("alert").waitFor();
    },
  },
  "24-mention-complete": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("textbox", { name: "Message" }).fill("see you at the bar @");
      await p.getByRole("textbox", { name: "Message" }).press("End");
      await p.getByRole("textbox", { name: "Message" }).pressSequentially("a");
      await p.getByRole("listbox", { name: "People to mention" }).waitFor();
    },
  },
  "25-block-confirm": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: /Ana Souza/ }).first().click();
      await p.getByRole("button", { name: /^Block / }).click();
      await p.getByRole("alertdialog").waitFor();
    },
  },
  "26-settings-blocked": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: /Ana Souza/ }).first().click();
      await p.getByRole("button", { name: /^Mute / }).click();
      await p.getByRole("button", { name: /^Block / }).click();
      await p.getByRole("alertdialog").getByRole("button", { name: "Block" }).click();
      await p.getByRole("button", { name: "Settings" }).click();
      await p.getByRole("region", { name: "Muted and blocked people" }).scrollIntoViewIfNeeded();
      await p.waitForTimeout(300);
    },
  },
  "27-phone-dm-actions": {
    scene: "chat",
    view: phone,
    run: async (p) => {
      await p.getByRole("button", { name: /Ana Souza/ }).first().click();
      await p.getByRole("button", { name: /^Block / }).click();
      await p.getByRole("alertdialog").waitFor();
    },
  },
  "28-search": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("searchbox", { name: "Search messages" }).fill("the");
      await p.getByRole("region", { name: "Search results" }).getByRole("button").first().waitFor();
      await p.waitForTimeout(300);
    },
  },
  "29-search-opened": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("searchbox", { name: "Search messages" }).fill("sunscreen");
      await p.getByRole("region", { name: "Search results" }).getByRole("button").first().click();
      await p.locator("li.msg.found").waitFor();
      await p.waitForTimeout(300);
    },
  },
  "30-meetup-card": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: /Main Stage/ }).first().click();
      await p.getByRole("group", { name: /Meet at the big wheel/ }).getByRole("button", { name: "Coming" }).click();
      await p.getByRole("group", { name: /Meet at the big wheel/ }).getByText("4 coming").waitFor();
      await p.waitForTimeout(300);
    },
  },
  "31-meetup-form": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: /Main Stage/ }).first().click();
      await p.getByRole("button", { name: "New meet-up" }).click();
      await p.getByRole("textbox", { name: "Where" }).fill("food trucks by the lake");
      await p.waitForTimeout(200);
    },
  },
  "32-phone-meetup": {
    scene: "chat",
    view: phone,
    run: async (p) => {
      await p.getByRole("button", { name: "Back to conversations" }).click();
      await p.getByRole("button", { name: /Main Stage/ }).first().click();
      await p.getByRole("button", { name: "New meet-up" }).click();
      await p.getByRole("textbox", { name: "Where" }).fill("the big wheel");
      await p.waitForTimeout(300);
    },
  },
  "33-dm-not-delivered": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: /^Bo / }).first().click();
      await p.getByText(/Not delivered yet: /).waitFor();
      await p.waitForTimeout(300);
    },
  },
  "34-phone-not-delivered": {
    scene: "mobile",
    view: phone,
    run: async (p) => {
      await p.getByRole("button", { name: "Back to conversations" }).click();
      await p.getByRole("button", { name: /^Bo / }).first().click();
      await p.getByText(/Not delivered yet: /).waitFor();
      await p.waitForTimeout(300);
    },
  },
  "35-group": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: /Camp crew/ }).first().click();
      await p.getByText("Tent is up, bring the lamp").waitFor();
      await p.waitForTimeout(300);
    },
  },
  "36-new-group": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: "New private group" }).click();
      await p.getByLabel("Group name").fill("Lake swim");
      await p.getByRole("dialog").getByRole("checkbox").first().check();
      await p.waitForTimeout(200);
    },
  },
  "37-phone-group": {
    scene: "mobile",
    view: phone,
    run: async (p) => {
      await p.getByRole("button", { name: "Back to conversations" }).click();
      await p.getByRole("button", { name: /Camp crew/ }).first().click();
      await p.getByText("Tent is up, bring the lamp").waitFor();
      await p.waitForTimeout(300);
    },
  },
  "38-photo": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: /Main Stage/ }).first().click();
      await p.getByRole("button", { name: /^Photo: Sunset.*full size/ }).waitFor();
      await p.waitForFunction(() => [...document.querySelectorAll(".photo-open img")].some((i) => i.src.startsWith("blob:") && i.complete));
      await p.waitForTimeout(300);
    },
  },
  "39-photo-full": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: /Main Stage/ }).first().click();
      await p.getByRole("button", { name: /^Photo: Sunset.*full size/ }).click();
      await p.waitForFunction(() => document.querySelector("img.photo-full")?.complete === true);
      await p.waitForTimeout(300);
    },
  },
  "40-photo-coming": {
    scene: "photo-coming",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: /Main Stage/ }).first().click();
      await p.getByRole("button", { name: /^Photo: Sunset.*Still coming/ }).waitFor();
      await p.waitForTimeout(300);
    },
  },
  "41-phone-photo-tray": {
    scene: "mobile",
    view: phone,
    run: async (p) => {
      await p.getByRole("button", { name: "Back to conversations" }).click();
      await p.getByRole("button", { name: /Main Stage/ }).first().click();
      // The app's own icon: a real PNG, as a person would pick one.
      const png = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), "../../icons/128x128@2x.png"));
      await p.getByTestId("photo-input").setInputFiles({ name: "crowd.png", mimeType: "image/png", buffer: png });
      await p.getByRole("textbox", { name: "Message" }).fill("we are by the sound desk");
      await p.getByText(/Photo: crowd\.png/).waitFor();
      await p.waitForTimeout(300);
    },
  },
  "13-phone": { scene: "mobile", view: phone, run: async (p) => p.waitForTimeout(600) },
  "14-phone-list": {
    scene: "mobile",
    view: phone,
    run: async (p) => {
      await p.getByRole("button", { name: "Back to conversations" }).click();
      await p.waitForTimeout(300);
    },
  },
  "15-dark": { scene: "chat", view: desktop, dark: true, run: async (p) => p.waitForTimeout(900) },
  "16-my-code": {
    scene: "chat",
    view: desktop,
    run: async (p) => {
      await p.getByRole("button", { name: "My code" }).click();
      await p.waitForTimeout(300);
    },
  },
};

const only = process.argv.slice(2);
let failed = 0;
try {
  for (const [name, s] of Object.entries(shots)) {
    if (only.length && !only.some((o) => name.includes(o))) continue;
    const ctx = await browser.newContext({ viewport: s.view, colorScheme: s.dark ? "dark" : "light", deviceScaleFactor: 1 });
    const page = await ctx.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    await page.route("**/*", (route) => {
      const host = new URL(route.request().url()).hostname;
      return host === "127.0.0.1" ? route.continue() : route.abort();
    });
    try {
      await page.goto(`${base}?scene=${s.scene}`);
      await page.waitForSelector("#root > *");
      await s.run(page);
      await page.screenshot({ path: `${out}/${name}.png` });
      console.log(`ok   ${name}${errors.length ? `  (page errors: ${errors.join(" | ")})` : ""}`);
      if (errors.length) failed++;
    } catch (e) {
      failed++;
      await page.screenshot({ path: `${out}/${name}-FAILED.png` }).catch(() => {});
      console.log(`FAIL ${name}: ${String(e).split("\n")[0]}`);
    }
    await ctx.close();
  }
} finally {
  await browser.close();
  await server.close();
}
process.exit(failed ? 1 : 0);
