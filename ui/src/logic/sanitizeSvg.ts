// The QR code comes from our own Rust side as an SVG string. It is put into
// the page as markup, so keep only drawing: no scripts, no event handlers, no
// foreign content, no links or external references (the CSP would block them
// anyway; this keeps a bad string from doing anything at all).

const DROP = new Set(["script", "foreignobject", "iframe", "object", "embed", "image", "use", "a", "style", "animate", "set"]);

export function sanitizeSvg(text: string): string | null {
  if (typeof DOMParser === "undefined") return null;
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const root = doc.documentElement;
  if (!root || root.nodeName.toLowerCase() !== "svg" || doc.getElementsByTagName("parsererror").length > 0) return null;
  const walk = (el: Element) => {
    for (const child of Array.from(el.children)) {
      if (DROP.has(child.localName.toLowerCase())) child.remove();
      else walk(child);
    }
    for (const attr of Array.from(el.attributes)) {
      const name = attr.name.toLowerCase();
      const value = attr.value.trim().toLowerCase();
      if (name.startsWith("on") || name === "href" || name === "xlink:href" || name === "style" || value.includes("url(") || value.startsWith("javascript:")) {
        el.removeAttribute(attr.name);
      }
    }
  };
  walk(root);
  // Let CSS size it; keep its proportions.
  const w = root.getAttribute("width");
  const h = root.getAttribute("height");
  if (!root.hasAttribute("viewBox") && w && h && /^\d+(\.\d+)?$/.test(w) && /^\d+(\.\d+)?$/.test(h)) {
    root.setAttribute("viewBox", `0 0 ${w} ${h}`);
  }
  root.removeAttribute("width");
  root.removeAttribute("height");
  return new XMLSerializer().serializeToString(root);
}
