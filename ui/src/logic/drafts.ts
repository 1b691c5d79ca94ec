// What the person has typed but not sent, per conversation. Kept in
// localStorage so a reload, a crash of the WebView or a failed send loses
// nothing.

const KEY = "festival-chat.drafts.v1";

export type Drafts = Readonly<Record<string, string>>;

export function setDraft(d: Drafts, key: string, text: string): Drafts {
  if ((d[key] ?? "") === text) return d;
  const next = { ...d };
  if (text === "") delete next[key];
  else next[key] = text;
  return next;
}

export interface KeyValue {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export function loadDrafts(storage: KeyValue | undefined): Drafts {
  try {
    const raw = storage?.getItem(KEY);
    if (!raw) return {};
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return {};
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(parsed)) if (typeof v === "string") out[k] = v;
    return out;
  } catch {
    return {};
  }
}

export function saveDrafts(storage: KeyValue | undefined, d: Drafts): void {
  try {
    storage?.setItem(KEY, JSON.stringify(d));
  } catch {
    // Storage full or disabled: drafts stay in memory for this session.
  }
}
