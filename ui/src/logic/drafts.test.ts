import { describe, expect, it } from "vitest";
import { loadDrafts, saveDrafts, setDraft, type KeyValue } from "./drafts";

function memory(): KeyValue & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) };
}

describe("drafts", () => {
  it("keeps one draft per conversation and drops empty ones", () => {
    let d = setDraft({}, "festival", "hello");
    d = setDraft(d, "main-stage", "see you");
    expect(d).toEqual({ festival: "hello", "main-stage": "see you" });
    d = setDraft(d, "festival", "");
    expect(d).toEqual({ "main-stage": "see you" });
  });

  it("survives a reload", () => {
    const s = memory();
    saveDrafts(s, { festival: "half a thought" });
    expect(loadDrafts(s)).toEqual({ festival: "half a thought" });
  });

  it("ignores a corrupt store rather than crashing", () => {
    const s = memory();
    s.data.set("festival-chat.drafts.v1", "{not json");
    expect(loadDrafts(s)).toEqual({});
    s.data.set("festival-chat.drafts.v1", JSON.stringify({ a: 1, b: "ok" }));
    expect(loadDrafts(s)).toEqual({ b: "ok" });
  });

  it("a full store does not throw", () => {
    const s: KeyValue = { getItem: () => null, setItem: () => { throw new Error("QuotaExceeded"); } };
    expect(() => saveDrafts(s, { a: "b" })).not.toThrow();
  });
});
