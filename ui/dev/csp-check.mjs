// DEV ONLY: the UI under a strict CSP. Builds the screenshot entry (real App
// over the fake node) to a temporary folder, serves it on 127.0.0.1 with a
// Content-Security-Policy header as strict as the app's, walks the main
// screens in headless Chromium and fails on any CSP violation or page error.
//
//   node ui/dev/csp-check.mjs

import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { build } from "vite";

const here = dirname(fileURLToPath(import.meta.url));

/** The app's own CSP, read from tauri.conf.json (so the two cannot drift), and no framing. */
const conf = JSON.parse(readFileSync(resolve(here, "../../tauri.conf.json"), "utf8"));
export const CSP = [...Object.entries(conf.app.security.csp).map(([k, v]) => `${k} ${v}`), "frame-ancestors 'none'"].join("; ");
const uiDir = resolve(here, "..");
const outDir = mkdtempSync(join(tmpdir(), "festival-ui-csp-"));

await build({
  root: uiDir,
  configFile: resolve(uiDir, "vite.config.ts"),
  logLevel: "warn",
  build: { outDir, emptyOutDir: true, rollupOptions: { input: resolve(here, "screens.html") } },
});

const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml" };
const server = createServer((req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^(\.\.[/\\])+/, "");
  try {
    const body = readFileSync(join(outDir, path));
    res.writeHead(200, { "Content-Type": types[extname(path)] ?? "application/octet-stream", "Content-Security-Policy": CSP });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}/dev/screens.html`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
});
const problems = [];
try {
  for (const scene of ["onboarding", "chat"]) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.route("**/*", (route) => (new URL(route.request().url()).hostname === "127.0.0.1" ? route.continue() : route.abort()));
    page.on("pageerror", (e) => problems.push(`${scene}: page error: ${e}`));
    page.on("console", (m) => m.type() === "error" && problems.push(`${scene}: console: ${m.text()}`));
    await page.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
    });
    await page.goto(`${base}?scene=${scene}`);
    await page.waitForSelector("#root > *");
    if (scene === "onboarding") {
      await page.getByPlaceholder("Your name").fill("Mia");
      await page.getByRole("button", { name: "Continue" }).click();
      await page.getByRole("img", { name: /QR code/ }).waitFor();
    } else {
      await page.getByText("Found one, thanks Ana!").waitFor();
      await page.getByRole("button", { name: "People nearby" }).click();
      await page.getByRole("button", { name: "My code" }).click();
      await page.getByRole("img", { name: /QR code/ }).waitFor();
      await page.keyboard.press("Escape");
      // A photo: its thumbnail (a data: URL), then the photo (a blob: URL), full size.
      await page.getByRole("button", { name: /Main Stage/ }).first().click();
      const photo = page.getByRole("button", { name: /^Photo: Sunset/ });
      await photo.click();
      const full = page.locator("img.photo-full");
      await full.waitFor();
      await page.waitForFunction(() => {
        const img = document.querySelector("img.photo-full");
        return img instanceof HTMLImageElement && img.complete && img.naturalWidth > 0 && img.src.startsWith("blob:");
      });
      await page.keyboard.press("Escape");
    }
    await page.waitForTimeout(300);
    await page.close();
  }
} finally {
  await browser.close();
  server.close();
  rmSync(outDir, { recursive: true, force: true });
}
if (problems.length) {
  console.log(problems.join("\n"));
  console.log(`CSP check: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log("CSP check: no violations, no page errors");
