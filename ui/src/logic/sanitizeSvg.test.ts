import { describe, expect, it } from "vitest";
import { sanitizeSvg } from "./sanitizeSvg";

describe("QR svg from the node", () => {
  it("keeps the drawing", () => {
    const out = sanitizeSvg('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" width="100"><path d="M0 0h1v1H0z" fill="#000"/></svg>');
    expect(out).toContain("<path");
    expect(out).toContain('viewBox="0 0 10 10"');
    expect(out).not.toContain("width=");
  });

  it("takes the node's QR code as the qrcode crate writes it", () => {
    const qr =
      '<?xml version="1.0" standalone="yes"?><svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="264" height="264" viewBox="0 0 264 264" shape-rendering="crispEdges"><rect x="0" y="0" width="264" height="264" fill="#ffffff"/><path fill="#111111" d="M32 32h8v8H32z"/></svg>';
    const out = sanitizeSvg(qr)!;
    expect(out).toContain('viewBox="0 0 264 264"');
    expect(out).toContain('fill="#111111"');
    expect(out).toContain("<rect");
  });

  it("keeps proportions of an svg without a viewBox", () => {
    expect(sanitizeSvg('<svg xmlns="http://www.w3.org/2000/svg" width="30" height="20"><rect/></svg>')).toContain('viewBox="0 0 30 20"');
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
