import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { sanitizeSvg } from "./sanitizeSvg";

// The node's real QR code for a fixed key, byte for byte as crates/app writes
// it (a Rust test there fails if this file and the renderer ever differ).
// Vitest runs from ui/.
const REAL_QR = readFileSync("src/logic/fixtures/qr-code.svg", "utf8");

const NS = 'xmlns="http://www.w3.org/2000/svg"';
const svg = (inner: string, attrs = 'viewBox="0 0 10 10"') => `<svg ${NS} ${attrs}>${inner}</svg>`;

/// Parse the output as the page will (HTML parser, inline SVG) and list
/// every element and attribute it holds.
function render(out: string) {
  const host = document.createElement("div");
  host.innerHTML = out;
  const all = Array.from(host.querySelectorAll("*"));
  return {
    host,
    tags: all.map((e) => e.localName),
    attrs: all.flatMap((e) => Array.from(e.attributes).map((a) => `${e.localName}.${a.name}=${a.value}`)),
  };
}

function expectOnlyDrawing(out: string | null) {
  if (out === null) return;
  const { tags, attrs } = render(out);
  for (const t of tags) expect(["svg", "g", "rect", "path"]).toContain(t);
  for (const a of attrs) {
    expect(a).not.toMatch(/\.on|href|style|url\(|javascript:|script|xml-stylesheet|foreignobject/i);
  }
  expect(out).not.toMatch(/<!--|<\?|<!\[CDATA|<!DOCTYPE|<!ENTITY|script|javascript|onload|onerror|href|url\(/i);
}

describe("QR svg from the node", () => {
  it("renders the node's real QR code: every dark module kept", () => {
    const out = sanitizeSvg(REAL_QR)!;
    expect(out).not.toBeNull();
    const { tags, host } = render(out);
    expect(tags).toEqual(["svg", "rect", "path"]);
    const root = host.querySelector("svg")!;
    expect(root.namespaceURI).toBe("http://www.w3.org/2000/svg");
    expect(root.getAttribute("viewBox")).toBe("0 0 270 270");
    expect(root.getAttribute("shape-rendering")).toBe("crispEdges");
    // Sized by CSS, not by the string.
    expect(root.hasAttribute("width")).toBe(false);
    const original = new DOMParser().parseFromString(REAL_QR, "image/svg+xml");
    expect(host.querySelector("path")!.getAttribute("d")).toBe(original.querySelector("path")!.getAttribute("d"));
    expect(host.querySelector("path")!.getAttribute("fill")).toBe("#111111");
    expect(host.querySelector("rect")!.getAttribute("fill")).toBe("#ffffff");
    expect(host.querySelector("rect")!.getAttribute("width")).toBe("270");
  });

  it("keeps the proportions of an svg without a viewBox", () => {
    expect(sanitizeSvg(`<svg ${NS} width="30" height="20"><rect/></svg>`)).toContain('viewBox="0 0 30 20"');
  });

  it("refuses what is not an svg", () => {
    expect(sanitizeSvg("<html></html>")).toBeNull();
    expect(sanitizeSvg("not xml at all <")).toBeNull();
    expect(sanitizeSvg("<svg><rect/></svg>")).toBeNull(); // no SVG namespace
    expect(sanitizeSvg(`<svg ${NS}><rect></svg>`)).toBeNull(); // not well-formed
  });
});

describe("hostile svg", () => {
  it("drops a script hidden in a comment and the comment itself", () => {
    const out = sanitizeSvg(svg('<!-- --><script>alert(1)</script><!-- --><!--<script>alert(2)</script>--><rect width="1" height="1"/>'));
    expectOnlyDrawing(out);
    expect(render(out!).tags).toEqual(["svg", "rect"]);
  });

  it("drops processing instructions such as xml-stylesheet", () => {
    const out = sanitizeSvg(
      `<?xml version="1.0"?><?xml-stylesheet type="text/css" href="javascript:alert(1)"?>${svg('<?evil x?><path d="M0 0h1v1H0z"/>')}`,
    );
    expectOnlyDrawing(out);
    expect(render(out!).tags).toEqual(["svg", "path"]);
  });

  it("drops foreignObject with the HTML inside it", () => {
    const out = sanitizeSvg(
      svg('<foreignObject width="10" height="10"><div xmlns="http://www.w3.org/1999/xhtml"><img src="x" onerror="alert(1)"/></div></foreignObject><rect/>'),
    );
    expectOnlyDrawing(out);
    expect(render(out!).tags).toEqual(["svg", "rect"]);
  });

  it("drops event handlers on the root and on shapes", () => {
    const out = sanitizeSvg(
      `<svg ${NS} viewBox="0 0 1 1" onload="alert(1)"><rect onclick="alert(2)" onmouseover="x" fill="#000"/><g onfocus="y"><path d="M0 0" onerror="z"/></g></svg>`,
    );
    expectOnlyDrawing(out);
    expect(out).toContain('fill="#000"');
  });

  it("drops links, use and href=javascript:", () => {
    const out = sanitizeSvg(
      `<svg ${NS} xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 1 1"><a href="javascript:alert(1)"><rect/></a><a xlink:href="javascript:alert(2)"><path d="M0 0"/></a><use href="#x"/><use xlink:href="data:image/svg+xml,&lt;svg/&gt;"/><rect href="javascript:alert(3)" xlink:href="javascript:alert(4)"/><image href="http://example.invalid/x.png"/></svg>`,
    );
    expectOnlyDrawing(out);
    expect(render(out!).tags).toEqual(["svg", "rect"]);
  });

  it("drops style elements and attributes and url() in any value", () => {
    const out = sanitizeSvg(
      svg(
        '<style>@import url(http://example.invalid/x.css); rect { fill: url(#x) }</style><rect style="fill:url(http://example.invalid/)" fill="url(#grad)"/><path d="M0 0" fill="red;background:url(x)"/><rect fill="expression(alert(1))"/><rect fill="var(--x)"/>',
      ),
    );
    expectOnlyDrawing(out);
    const { attrs } = render(out!);
    expect(attrs.filter((a) => a.includes("fill"))).toEqual([]);
  });

  it("drops animation that could rewrite attributes later", () => {
    const out = sanitizeSvg(
      svg('<rect><animate attributeName="href" to="javascript:alert(1)"/><set attributeName="onclick" to="alert(2)"/></rect><animateTransform/>'),
    );
    expectOnlyDrawing(out);
    expect(render(out!).tags).toEqual(["svg", "rect"]);
  });

  it("keeps no trace of doctype and entity tricks", () => {
    const withEntities = `<!DOCTYPE svg [<!ENTITY x "<script>alert(1)</script>"><!ENTITY ext SYSTEM "file:///etc/passwd">]>${svg('<rect/>&x;&ext;')}`;
    expectOnlyDrawing(sanitizeSvg(withEntities));
    const lol = `<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>${svg('<rect/><path d="&b;"/>')}`;
    expectOnlyDrawing(sanitizeSvg(lol));
    // Character references spelling a handler or a script stay inert text.
    const refs = svg('<rect o&#110;load="x"/><path d="M0 0" fill="&#106;avascript:alert(1)"/>&lt;script&gt;alert(1)&lt;/script&gt;');
    expectOnlyDrawing(sanitizeSvg(refs));
  });

  it("drops CDATA sections and text", () => {
    const out = sanitizeSvg(svg("<![CDATA[<script>alert(1)</script>]]>some text<rect/>"));
    expectOnlyDrawing(out);
    expect(render(out!).host.textContent).toBe("");
  });

  it("drops a nested svg and elements of other namespaces", () => {
    const out = sanitizeSvg(
      svg(
        `<svg ${NS} onload="alert(1)"><rect/></svg><html:script xmlns:html="http://www.w3.org/1999/xhtml">alert(2)</html:script><x:rect xmlns:x="urn:x"/><path d="M0 0"/>`,
      ),
    );
    expectOnlyDrawing(out);
    expect(render(out!).tags).toEqual(["svg", "path"]);
  });

  it("checks values: numbers, path data, colours, viewBox", () => {
    const out = sanitizeSvg(
      `<svg ${NS} viewBox="0 0 10 javascript" width="10" height="10" shape-rendering="url(#x)"><rect x="1" y="-2" width="-3" height="4e1" fill="#abc"/><path d="M0 0h1;alert(1)" fill="black"/><path d="M0 0h1v1H0z" fill="#12345"/></svg>`,
    )!;
    expectOnlyDrawing(out);
    const { host, attrs } = render(out);
    expect(host.querySelector("svg")!.getAttribute("viewBox")).toBe("0 0 10 10");
    expect(attrs).toEqual([
      "svg.xmlns=http://www.w3.org/2000/svg",
      "svg.viewBox=0 0 10 10",
      "rect.x=1",
      "rect.y=-2",
      "rect.height=4e1",
      "rect.fill=#abc",
      "path.fill=black",
      "path.d=M0 0h1v1H0z",
    ]);
  });

  it("bounds the work a huge or deeply nested string can cause", () => {
    const many = svg("<rect/>".repeat(600));
    expect(render(sanitizeSvg(many)!).tags.length).toBeLessThanOrEqual(257);
    const deep = svg("<g>".repeat(50) + "<rect/>" + "</g>".repeat(50));
    expect(render(sanitizeSvg(deep)!).tags.length).toBeLessThanOrEqual(6);
  });
});
