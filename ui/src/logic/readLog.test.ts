import { describe, expect, it } from "vitest";
import { READ_LOG_MAX, batches, loadReadLog, record, saveReadLog, unreported } from "./readLog";
import type { KeyValue } from "./drafts";

describe("read log of DMs", () => {
  it("reports each DM once", () => {
    let log = record([], ["a", "b"]);
    expect(unreported(log, ["b", "c", "c"])).toEqual(["c"]);
    log = record(log, ["c"]);
    expect(unreported(log, ["a", "b", "c"])).toEqual([]);
  });

  it("stays bounded, forgetting the oldest", () => {
    const many = Array.from({ length: READ_LOG_MAX + 10 }, (_, i) => `id${i}`);
    const log = record([], many);
    expect(log).toHaveLength(READ_LOG_MAX);
    expect(log[0]).toBe("id10");
  });

  it("sends at most 64 ids per receipt", () => {
    const ids = Array.from({ length: 130 }, (_, i) => `${i}`);
    expect(batches(ids).map((b) => b.length)).toEqual([64, 64, 2]);
    expect(batches([])).toEqual([]);
  });

  it("survives a restart and a corrupt store", () => {
    const data = new Map<string, string>();
    const s: KeyValue = { getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) };
    saveReadLog(s, ["x", "y"]);
    expect(loadReadLog(s)).toEqual(["x", "y"]);
    data.set("festival-chat.read-log.v1", "{oops");
    expect(loadReadLog(s)).toEqual([]);
  });
});
