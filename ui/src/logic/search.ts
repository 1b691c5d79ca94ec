// Search results: the words typed, marked in a result's text (the node
// matched each word at the start of a word, any letter case; the last
// typed word as a prefix).

export interface Part {
  text: string;
  hit: boolean;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** `text` split into runs, those starting a word with one of `words` (any case) marked. */
export function highlightWords(text: string, words: readonly string[]): Part[] {
  const clean = [...new Set(words.map((w) => w.replace(/["]/g, "")).filter((w) => /[\p{L}\p{N}]/u.test(w)))].sort((a, b) => b.length - a.length);
  if (clean.length === 0) return [{ text, hit: false }];
  const re = new RegExp(`(?<![\\p{L}\\p{N}])(${clean.map(escape).join("|")})`, "giu");
  const out: Part[] = [];
  let at = 0;
  for (const m of text.matchAll(re)) {
    const i = m.index ?? 0;
    if (i > at) out.push({ text: text.slice(at, i), hit: false });
    out.push({ text: m[0], hit: true });
    at = i + m[0].length;
  }
  if (at < text.length) out.push({ text: text.slice(at), hit: false });
  return out.length ? out : [{ text, hit: false }];
}
