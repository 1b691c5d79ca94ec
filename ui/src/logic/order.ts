// Message order and the merge of history pages with live events.
//
// Every node shows a room in the same order: by the author's clock
// (created_at), then author, then the author's own sequence number. Ties on
// the clock between two authors are broken the same way everywhere, and one
// author's messages never swap places even when their clock jumps.

/** What ordering needs from a message; the generated MessageView fits it. */
export interface Ordered {
  id: string;
  created_at: number | bigint;
  author: string;
  seq: number | bigint;
}

// Works for number, bigint and a mix of both (ts-rs may type u64 as bigint
// while JSON hands us numbers).
function cmp(a: number | bigint | string, b: number | bigint | string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareMessages(a: Ordered, b: Ordered): number {
  return cmp(a.created_at, b.created_at) || cmp(a.author, b.author) || cmp(a.seq, b.seq) || cmp(a.id, b.id);
}

/**
 * `current` (sorted, unique) plus `incoming` (any order, may repeat), sorted
 * and unique by id. An id already present keeps its current object, so views
 * keyed on it do not re-render. Returns `current` itself when nothing is new.
 */
export function mergeMessages<M extends Ordered>(current: readonly M[], incoming: readonly M[]): readonly M[] {
  if (incoming.length === 0) return current;
  const known = new Set(current.map((m) => m.id));
  const fresh: M[] = [];
  for (const m of incoming) {
    if (known.has(m.id)) continue;
    known.add(m.id);
    fresh.push(m);
  }
  if (fresh.length === 0) return current;
  fresh.sort(compareMessages);
  // Common cases: a live message after everything, or an older page before it.
  const last = current[current.length - 1];
  const first = current[0];
  if (last === undefined || compareMessages(last, fresh[0]!) < 0) return [...current, ...fresh];
  if (first !== undefined && compareMessages(fresh[fresh.length - 1]!, first) < 0) return [...fresh, ...current];
  return [...current, ...fresh].sort(compareMessages);
}
