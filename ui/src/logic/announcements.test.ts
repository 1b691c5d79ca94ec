import { describe, expect, it } from "vitest";
import type { AnnouncementView } from "../model";
import { addAnnouncement, MAX_SHOWN, nextEnd, running } from "./announcements";

const a = (id: string, created_at: number, until: number): AnnouncementView => ({ id: id.padEnd(64, "0"), text: `announcement ${id}`, created_at, until });

describe("announcements", () => {
  it("keep each once, newest first, at most MAX_SHOWN", () => {
    let list: readonly AnnouncementView[] = [];
    list = addAnnouncement(list, a("1", 100, 5_000), 0);
    list = addAnnouncement(list, a("2", 300, 5_000), 0);
    list = addAnnouncement(list, a("1", 100, 5_000), 0);
    expect(list.map((x) => x.created_at)).toEqual([300, 100]);
    for (let i = 0; i < 20; i++) list = addAnnouncement(list, a(`x${i}`, 1_000 + i, 5_000), 0);
    expect(list).toHaveLength(MAX_SHOWN);
    expect(list[0]?.created_at).toBe(1_019);
  });

  it("never let ended ones push out one still running", () => {
    let list: readonly AnnouncementView[] = [a("long", 100, 100_000)];
    for (let i = 0; i < 20; i++) list = addAnnouncement(list, a(`short${i}`, 1_000 + i, 2_000), 3_000);
    expect(list.map((x) => x.until)).toEqual([100_000]);
  });

  it("go when their end comes, and say when the next one does", () => {
    const list = [a("1", 100, 2_000), a("2", 200, 1_000)];
    expect(running(list, 999).map((x) => x.until)).toEqual([2_000, 1_000]);
    expect(running(list, 1_000).map((x) => x.until)).toEqual([2_000]);
    expect(running(list, 2_000)).toEqual([]);
    expect(nextEnd(list, 500)).toBe(1_000);
    expect(nextEnd(list, 1_500)).toBe(2_000);
    expect(nextEnd(list, 2_000)).toBeNull();
  });
});
