// Words and numbers for the screen.

export function toMs(t: number | bigint): number {
  return typeof t === "bigint" ? Number(t) : t;
}

/** "14:05": inside a chat, where day separators give the date. */
export function clockTime(at: number | bigint): string {
  return new Date(toMs(at)).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

/** "14:05" today, "Tue 14:05" this week, "3 Jul 14:05" before. */
export function messageTime(at: number | bigint, now: number = Date.now()): string {
  const d = new Date(toMs(at));
  const n = new Date(now);
  const hm = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  if (d.toDateString() === n.toDateString()) return hm;
  if (Math.abs(now - d.getTime()) < 6 * 86_400_000) {
    return `${d.toLocaleDateString(undefined, { weekday: "short" })} ${hm}`;
  }
  return `${d.toLocaleDateString(undefined, { day: "numeric", month: "short" })} ${hm}`;
}

/** "Today", "Yesterday", "Saturday 5 July": day separators in a chat. */
export function dayLabel(at: number | bigint, now: number = Date.now()): string {
  const d = new Date(toMs(at));
  const today = new Date(now);
  const yesterday = new Date(now - 86_400_000);
  if (d.toDateString() === today.toDateString()) return "Today";
  if (d.toDateString() === yesterday.toDateString()) return "Yesterday";
  return d.toLocaleDateString(undefined, { weekday: "long", day: "numeric", month: "long" });
}

export function sameDay(a: number | bigint, b: number | bigint): boolean {
  return new Date(toMs(a)).toDateString() === new Date(toMs(b)).toDateString();
}

/** "just now", "4 min ago", "2 h ago", "3 d ago"; "never" without a time. */
export function lastSeen(at: number | bigint | null | undefined, now: number = Date.now()): string {
  if (at === null || at === undefined) return "never";
  const s = Math.max(0, Math.round((now - toMs(at)) / 1000));
  if (s < 45) return "just now";
  const min = Math.round(s / 60);
  if (min < 60) return `${min} min ago`;
  const h = Math.round(min / 60);
  if (h < 36) return `${h} h ago`;
  return `${Math.round(h / 24)} d ago`;
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const first = parts[0] ?? "?";
  const second = parts[1];
  const a = [...first][0] ?? "?";
  const b = second ? ([...second][0] ?? "") : "";
  return (a + b).toUpperCase();
}

/** A stable colour slot (0..7) for a peer, so everyone keeps one colour. */
export function colorSlot(id: string): number {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return h % 8;
}

/** Short form of a 64-hex peer id for when no name is known. */
export function shortId(id: string): string {
  return id.length > 8 ? `${id.slice(0, 4)}…${id.slice(-4)}` : id;
}

export function duration(ms: number | bigint): string {
  const s = Math.round(toMs(ms) / 1000);
  return s < 60 ? `${s} s` : `${Math.round(s / 60)} min`;
}
