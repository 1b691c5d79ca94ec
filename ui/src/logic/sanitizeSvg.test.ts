import { describe, expect, it } from "vitest";
import { sanitizeSvg } from "./sanitizeSvg";

describe("QR svg from the node", () => {
  it("keeps the drawing", () => {
    const out = sanitizeSvg('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" width="100"><path d="M0 0h1v1H0z" fill="#000"/></svg>');
    expect(out).toContain("<path");
    expect(out).toContain('viewBox="0 0 10 10"');
    expect(out).not.toContain("width=");
  });

  it("strips scripts, handlers and links", () => {
    const out = sanitizeSvg(
      '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script><a href="javascript:x"><rect/></a><rect style="fill:url(http://x)" onclick="y"/></svg>',
    )!;
    expect(out).not.toMatch(/script|onload|onclick|href|url\(/);
    expect(out).toContain("<rect");
  });

  it("refuses what is not an svg", () => {
    expect(sanitizeSvg("<html></html>")).toBeNull();
    expect(sanitizeSvg("not xml at all <")).toBeNull();
  });
});
