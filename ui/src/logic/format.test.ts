import { describe, expect, it } from "vitest";
import { colorSlot, initials, lastSeen, sameDay, shortId } from "./format";

describe("format", () => {
  const now = Date.UTC(2026, 6, 4, 12, 0, 0);
  it("last seen in words", () => {
    expect(lastSeen(null, now)).toBe("never");
    expect(lastSeen(now - 10_000, now)).toBe("just now");
    expect(lastSeen(now - 4 * 60_000, now)).toBe("4 min ago");
    expect(lastSeen(BigInt(now - 2 * 3_600_000), now)).toBe("2 h ago");
    expect(lastSeen(now - 3 * 86_400_000, now)).toBe("3 d ago");
    expect(lastSeen(now + 5_000, now)).toBe("just now");
  });
  it("initials", () => {
    expect(initials("ana maria")).toBe("AM");
    expect(initials("bo")).toBe("B");
    expect(initials("  ")).toBe("?");
    expect(initials("élodie")).toBe("É");
  });
  it("colour slot is stable and in range", () => {
    expect(colorSlot("abc")).toBe(colorSlot("abc"));
    for (const s of ["", "a", "ff".repeat(32)]) expect(colorSlot(s)).toBeGreaterThanOrEqual(0);
    for (const s of ["", "a", "ff".repeat(32)]) expect(colorSlot(s)).toBeLessThan(8);
  });
  it("short id", () => {
    expect(shortId("0123456789abcdef")).toBe("0123…cdef");
  });
  it("same day", () => {
    expect(sameDay(now, now + 1000)).toBe(true);
    expect(sameDay(now, now + 86_400_000)).toBe(false);
  });
});
