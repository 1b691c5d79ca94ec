// Which DMs this device has already reported as read. The DM mailbox has no
// read mark in the node: its read state is the receipts themselves, so the
// UI sends a read receipt for each DM the person has seen, once. Kept in
// localStorage so a restart does not send them all again.

import type { KeyValue } from "./drafts";

const KEY = "festival-chat.read-log.v1";
/** Ids remembered; older ones fall out (a conversation that old is long read). */
export const READ_LOG_MAX = 5000;
/** Ids per mark_read call: the core's receipt limit (MAX_RECEIPT_IDS). */
export const RECEIPT_BATCH = 64;

export type ReadLog = readonly string[];

export function unreported(log: ReadLog, ids: readonly string[]): string[] {
  const known = new Set(log);
  const out: string[] = [];
  for (const id of ids) {
    if (!known.has(id)) {
      known.add(id);
      out.push(id);
    }
  }
  return out;
}

export function record(log: ReadLog, ids: readonly string[]): ReadLog {
  const fresh = unreported(log, ids);
  if (fresh.length === 0) return log;
  const next = [...log, ...fresh];
  return next.length > READ_LOG_MAX ? next.slice(next.length - READ_LOG_MAX) : next;
}

export function batches(ids: readonly string[], size = RECEIPT_BATCH): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < ids.length; i += size) out.push(ids.slice(i, i + size));
  return out;
}

export function loadReadLog(storage: KeyValue | undefined): ReadLog {
  try {
    const parsed: unknown = JSON.parse(storage?.getItem(KEY) ?? "[]");
    return Array.isArray(parsed) ? parsed.filter((x): x is string => typeof x === "string").slice(-READ_LOG_MAX) : [];
  } catch {
    return [];
  }
}

export function saveReadLog(storage: KeyValue | undefined, log: ReadLog): void {
  try {
    storage?.setItem(KEY, JSON.stringify(log));
  } catch {
    // Full or disabled: at worst a few receipts are sent again next time.
  }
}
