// Mentions: "@Ana" in a message. The node raises a notification when a
// message mentions my name (festival_app::notify::mentions, the same rule:
// "@", then the whole name in any letter case, not followed by a letter or
// digit); here they are highlighted and completed in the composer.

/** Suggestions shown while an "@name" is being typed. */
export const MAX_SUGGESTIONS = 5;

function isWordChar(c: string | undefined): boolean {
  return c !== undefined && /[\p{L}\p{N}]/u.test(c);
}

/** Whether `text` mentions `name` (the rule the node notifies by). */
export function mentions(text: string, name: string): boolean {
  const n = name.trim().toLowerCase();
  if (!n) return false;
  const t = text.toLowerCase();
  for (let at = t.indexOf("@"); at >= 0; at = t.indexOf("@", at + 1)) {
    if (t.startsWith(n, at + 1) && !isWordChar(t[at + 1 + n.length])) return true;
  }
  return false;
}

export interface Segment {
  text: string;
  /** An "@name" of someone known; `me` when it is my name. */
  mention?: { me: boolean };
}

/**
 * Split `text` into plain runs and mentions of the `names` given (longest
 * name first, so "@Ana B" wins over "@Ana").
 */
export function splitMentions(text: string, names: readonly string[], myName: string): Segment[] {
  const known = [...new Set([...names, myName].map((n) => n.trim()).filter(Boolean))].sort((a, b) => b.length - a.length);
  if (known.length === 0 || !text.includes("@")) return [{ text }];
  const lower = text.toLowerCase();
  const out: Segment[] = [];
  let plainFrom = 0;
  let i = text.indexOf("@");
  while (i >= 0) {
    const hit = known.find((n) => lower.startsWith(n.toLowerCase(), i + 1) && !isWordChar(text[i + 1 + n.length]));
    if (hit) {
      if (i > plainFrom) out.push({ text: text.slice(plainFrom, i) });
      const end = i + 1 + hit.length;
      out.push({ text: text.slice(i, end), mention: { me: hit.toLowerCase() === myName.trim().toLowerCase() } });
      plainFrom = end;
      i = text.indexOf("@", end);
    } else {
      i = text.indexOf("@", i + 1);
    }
  }
  if (plainFrom < text.length) out.push({ text: text.slice(plainFrom) });
  return out;
}

/** The "@..." being typed just before the caret, if any: where it starts and what follows the "@". */
export function mentionQuery(text: string, caret: number): { start: number; query: string } | null {
  const before = text.slice(0, caret);
  const at = before.lastIndexOf("@");
  if (at < 0) return null;
  // "@" starts a mention only at the start or after a space ("x@y" is an address).
  if (at > 0 && !/\s/u.test(before[at - 1] ?? "")) return null;
  const query = before.slice(at + 1);
  // Names may hold single spaces, not line breaks or runs of spaces.
  if (query.length > 32 || /\n|\s\s/u.test(query)) return null;
  return { start: at, query };
}

/**
 * Names that complete `query`, in the order given, at most MAX_SUGGESTIONS;
 * a name typed in full comes first, so Enter takes it rather than a longer
 * one ("@Ben" with Benedikt known).
 */
export function suggestions(query: string, names: readonly string[], myName: string): string[] {
  const q = query.toLowerCase();
  const me = myName.trim().toLowerCase();
  const seen = new Set<string>();
  const out: string[] = [];
  for (const n of names) {
    const name = n.trim();
    const key = name.toLowerCase();
    if (!name || key === me || seen.has(key) || !key.startsWith(q)) continue;
    seen.add(key);
    if (key === q) out.unshift(name);
    else out.push(name);
    if (out.length === MAX_SUGGESTIONS) break;
  }
  return out;
}

/** `text` with the mention at `start..caret` completed to `name` and a space after it; the new caret. */
export function completeMention(text: string, start: number, caret: number, name: string): { text: string; caret: number } {
  const insert = `@${name} `;
  const after = text.slice(caret).replace(/^\S*/u, "").replace(/^ /u, "");
  return { text: text.slice(0, start) + insert + after, caret: start + insert.length };
}
