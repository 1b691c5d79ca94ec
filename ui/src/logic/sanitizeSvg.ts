// The QR code comes from our own Rust side as an SVG string and is put into
// the page as markup. It is rebuilt from an allowlist, never patched: parse
// the string, then copy into a fresh <svg> only the elements and attributes a
// QR code needs, each value checked. Whatever is not on the list goes, with
// no list of bad things to keep up to date: comments, processing
// instructions, CDATA, doctype and entities, text, script, style,
// foreignObject, use, a, image, animate, nested svg, event handlers, href,
// style attributes, url(...) references. The CSP would block most of it
// anyway; this keeps a bad string from doing anything at all.
//
// What the Rust side (crates/app/src/contact.rs, the qrcode crate's SVG
// renderer) writes:
//   <svg xmlns version width height viewBox shape-rendering>
//     <rect x y width height fill/> <path fill d/>
//   </svg>

const SVG_NS = "http://www.w3.org/2000/svg";

/// A QR code is one rect and one path; this is far above any real one and
/// bounds the work a hostile string can cause.
const MAX_ELEMENTS = 256;
/// Groups inside groups: a QR code has none; a little nesting is harmless.
const MAX_DEPTH = 4;
/// Path data of the largest QR code (version 40, one "M x yhwvhHxVy" per
/// dark run) stays well under this.
const MAX_PATH_BYTES = 512 * 1024;

type Check = (value: string) => boolean;

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const isNumber: Check = (v) => NUMBER.test(v);
const isLength: Check = (v) => NUMBER.test(v) && Number(v) >= 0;
const isViewBox: Check = (v) => {
  const parts = v.split(/[\s,]+/);
  return parts.length === 4 && parts.every(isNumber) && Number(parts[2]) >= 0 && Number(parts[3]) >= 0;
};
/// #rgb, #rgba, #rrggbb, #rrggbbaa, or a plain colour keyword ("black",
/// "none"): letters only, so no url(), var() or expressions.
const isColour: Check = (v) => /^#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/.test(v) || /^[a-zA-Z]{1,20}$/.test(v);
/// Path commands, numbers and separators: nothing else can appear in path data.
const isPathData: Check = (v) => v.length <= MAX_PATH_BYTES && /^[MmLlHhVvCcSsQqTtAaZz0-9eE.,+\-\s]*$/.test(v);
const RENDERING = new Set(["auto", "optimizeSpeed", "crispEdges", "geometricPrecision"]);
const isRendering: Check = (v) => RENDERING.has(v);

const PAINT = { fill: isColour };
const BOX = { x: isNumber, y: isNumber, width: isLength, height: isLength };

/// Per element: the attributes it may keep and how each value is checked.
const ALLOWED: Record<string, Record<string, Check>> = {
  g: { ...PAINT },
  rect: { ...BOX, ...PAINT },
  path: { d: isPathData, ...PAINT },
};

export function sanitizeSvg(text: string): string | null {
  if (typeof DOMParser === "undefined" || typeof text !== "string") return null;
  let doc: Document;
  try {
    doc = new DOMParser().parseFromString(text, "image/svg+xml");
  } catch {
    return null;
  }
  const root = doc.documentElement;
  if (!root || root.namespaceURI !== SVG_NS || root.localName !== "svg") return null;
  if (doc.getElementsByTagNameNS("*", "parsererror").length > 0) return null;

  const out = doc.implementation.createDocument(SVG_NS, "svg", null);
  const svg = out.documentElement;
  const attr = (name: string) => {
    const v = root.getAttributeNS(null, name);
    return v === null ? null : v.trim();
  };
  // Let CSS size it; the viewBox keeps its proportions.
  const viewBox = attr("viewBox");
  const w = attr("width");
  const h = attr("height");
  if (viewBox !== null && isViewBox(viewBox)) svg.setAttribute("viewBox", viewBox.replace(/[\s,]+/g, " "));
  else if (w !== null && h !== null && isLength(w) && isLength(h)) svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const rendering = attr("shape-rendering");
  if (rendering !== null && isRendering(rendering)) svg.setAttribute("shape-rendering", rendering);

  let budget = MAX_ELEMENTS;
  const copyChildren = (from: Element, to: Element, depth: number) => {
    // `children`: elements only, so text, comments, processing instructions
    // and CDATA never come along.
    for (let child = from.firstElementChild; child && budget > 0; child = child.nextElementSibling) {
      if (child.namespaceURI !== SVG_NS) continue;
      const allowed = Object.prototype.hasOwnProperty.call(ALLOWED, child.localName) ? ALLOWED[child.localName] : null;
      if (!allowed) continue;
      budget -= 1;
      const copy = out.createElementNS(SVG_NS, child.localName);
      for (const a of Array.from(child.attributes)) {
        // Namespaced attributes (xlink:href, xml:base, ...) are never needed.
        if (a.namespaceURI !== null || a.prefix) continue;
        const check = Object.prototype.hasOwnProperty.call(allowed, a.localName) ? allowed[a.localName] : null;
        const value = a.value.trim();
        if (check && check(value)) copy.setAttribute(a.localName, value);
      }
      if (child.localName === "g" && depth < MAX_DEPTH) copyChildren(child, copy, depth + 1);
      to.appendChild(copy);
    }
  };
  copyChildren(root, svg, 0);
  return new XMLSerializer().serializeToString(svg);
}
