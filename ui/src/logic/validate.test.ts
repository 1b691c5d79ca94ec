import { describe, expect, it } from "vitest";
import {
  MAX_TEXT_BYTES,
  NAME_MESSAGES,
  checkCode,
  checkFestival,
  checkLifetimeHours,
  checkMessage,
  checkName,
  checkPeerLimit,
  checkStorageMb,
  hoursText,
  checkRelayUrl,
  checkRoomName,
  roomIdPreview,
} from "./validate";

describe("message checks", () => {
  it("refuses empty and whitespace-only messages", () => {
    expect(checkMessage("")).toMatchObject({ ok: false });
    expect(checkMessage("  \n\t")).toMatchObject({ ok: false });
  });

  it("accepts exactly the core limit and refuses one byte more", () => {
    expect(checkMessage("a".repeat(MAX_TEXT_BYTES)).ok).toBe(true);
    const r = checkMessage("a".repeat(MAX_TEXT_BYTES + 1));
    expect(r).toEqual({ ok: false, error: expect.stringContaining("4001 of 4000 bytes") });
  });

  it("counts bytes, not characters, like the core", () => {
    // 1000 emoji are 4000 bytes; one more is over.
    expect(checkMessage("🎉".repeat(1000)).ok).toBe(true);
    expect(checkMessage("🎉".repeat(1001)).ok).toBe(false);
  });
});

describe("festival id", () => {
  it.each(["glasto26", "fest.2026", "a", "x-y_z"])("accepts %s", (id) => expect(checkFestival(id).ok).toBe(true));
  it.each(["", "Glasto", "with space", "a".repeat(33), "ümlaut"])("refuses %j", (id) => expect(checkFestival(id).ok).toBe(false));
});

describe("room names", () => {
  it("previews the id the core makes", () => {
    expect(roomIdPreview(" Main  Stage ")).toBe("main-stage");
    expect(roomIdPreview("Camp B12")).toBe("camp-b12");
    expect(roomIdPreview("a - b")).toBe("a-b");
  });
  it("refuses empty and reserved names", () => {
    expect(checkRoomName("  ").ok).toBe(false);
    expect(checkRoomName("!!!").ok).toBe(false);
    expect(checkRoomName("DM").ok).toBe(false);
    expect(checkRoomName("Camp B12").ok).toBe(true);
  });
});

describe("other fields", () => {
  it("relay url is empty or ws(s)", () => {
    expect(checkRelayUrl("").ok).toBe(true);
    expect(checkRelayUrl("wss://relay.example").ok).toBe(true);
    expect(checkRelayUrl("http://x").ok).toBe(false);
    expect(checkRelayUrl("not a url").ok).toBe(false);
  });
  it("peer limit is empty or 1..32", () => {
    expect(checkPeerLimit("").ok).toBe(true);
    expect(checkPeerLimit("4").ok).toBe(true);
    expect(checkPeerLimit("32").ok).toBe(true);
    expect(checkPeerLimit("33").ok).toBe(false);
    expect(checkPeerLimit("0").ok).toBe(false);
    expect(checkPeerLimit("2.5").ok).toBe(false);
  });
  it("a contact code is festival: and 64 hex digits, or the bare hex", () => {
    const hex = "0123456789abcdef".repeat(4);
    expect(checkCode("   ").ok).toBe(false);
    expect(checkCode("abc").ok).toBe(false);
    expect(checkCode(`festival:${hex}`).ok).toBe(true);
    expect(checkCode(`  ${hex.toUpperCase()} `).ok).toBe(true);
    expect(checkCode(`festival:${hex}0`).ok).toBe(false);
    expect(checkCode(`festival:${hex.slice(1)}g`).ok).toBe(false);
  });
});

// The core's own cases (crates/core/src/name.rs tests), with the app's words.
describe("display names", () => {
  const refused = (name: string) => {
    const c = checkName(name);
    return c.ok ? null : c.error;
  };

  it.each(["Ana", "Zoë", "José María", "Nguyễn Văn", "Jürgen-Ö", "山田 太郎", "Ольга", "أحمد", "DJ 🎧 Max", "a".repeat(48)])("accepts %j", (n) =>
    expect(checkName(n)).toEqual({ ok: true }),
  );

  it("refuses an empty name", () => {
    expect(refused("")).toBe(NAME_MESSAGES.empty);
    expect(refused("   ")).toBe(NAME_MESSAGES.empty);
    expect(NAME_MESSAGES.empty).toBe("Pick a name so people know who is writing.");
  });

  it("counts bytes of UTF-8, not characters: at most 48", () => {
    expect(refused("a".repeat(49))).toBe("Names are at most 48 bytes; pick a shorter one.");
    expect(refused("é".repeat(25))).toBe(NAME_MESSAGES.tooLong);
    expect(checkName("é".repeat(24)).ok).toBe(true);
  });

  it.each([
    ["Ana\u200B", "zero-width space"],
    ["A\u200Dna", "zero-width joiner"],
    ["\u202EanA", "right-to-left override"],
    ["Ana\u2066x", "isolate"],
    ["An\u00ADa", "soft hyphen"],
    ["Ana\u0007", "bell"],
    ["Ana\u0000", "NUL"],
    ["Ana\u001F", "unit separator"],
    ["Ana\u007F", "delete"],
    ["Ana\u0085", "next line"],
    ["Ana\u009F", "application program command"],
    ["Ana\u200E", "left-to-right mark"],
    ["Ana\u200F", "right-to-left mark"],
    ["Ana\u202A", "left-to-right embedding"],
    ["Ana\u2060", "word joiner"],
    ["Ana\u2064", "invisible plus"],
    ["Ana\u206F", "nominal digit shapes"],
    ["Ana\u2028Bo", "line separator"],
    ["\u3164", "Hangul filler"],
    ["Ana\u{E0041}", "tag character"],
    ["Ana\uFEFF", "byte order mark"],
    ["Ana\tBo", "tab"],
    ["Ana\nBo", "line break"],
    ["Ana\u00A0Bo", "no-break space"],
    ["\uE000", "private use"],
  ])("refuses %j (%s) as invisible", (n) =>
    expect(refused(n)).toBe("Names cannot hold invisible or direction-changing characters, tabs or line breaks."),
  );

  it("refuses spaces at the ends and several in a row", () => {
    for (const n of [" Ana", "Ana ", "Ana  Bo"]) expect(refused(n)).toBe("Use single spaces between the words of your name.");
  });

  it("refuses a stack of accents on one letter, not two", () => {
    expect(refused("A\u0301\u0301\u0301na")).toBe("Too many accents on one letter.");
    expect(checkName("A\u0301\u0301na").ok).toBe(true);
  });

  it.each(["Ana ✓", "✔ Ana", "Ana ☑", "Ana ✅", "Ana Verified", "VER1FIED Ana", "Ana (official)", "Vérified", "OFFICIAL", "v e r i f i e d"])(
    "refuses %j: only the app shows who is verified",
    (n) => expect(refused(n)).toBe("Names cannot claim to be verified or official: the app shows who is verified."),
  );

  it("does not take ordinary names for claims", () => {
    for (const n of ["Vera", "Offi", "Verity Fiedler", "Cial"]) expect(checkName(n).ok).toBe(true);
  });
});

describe("storage settings", () => {
  it("storage is empty (512 MB) or a whole number of MB from 64 to 65536", () => {
    for (const ok of ["", "  ", "64", "512", " 2048 ", "65536"]) expect(checkStorageMb(ok).ok).toBe(true);
    for (const bad of ["63", "0", "65537", "1.5", "-64", "1e3", "lots", "512 MB"]) expect(checkStorageMb(bad)).toMatchObject({ ok: false, error: expect.stringContaining("64 to 65536") });
  });

  it("message lifetime is empty (a week) or 1 to 8784 hours", () => {
    for (const ok of ["", "1", "72", "168", "8784"]) expect(checkLifetimeHours(ok).ok).toBe(true);
    for (const bad of ["0", "8785", "2.5", "-1", "a week"]) expect(checkLifetimeHours(bad)).toMatchObject({ ok: false, error: expect.stringContaining("1 to 8784 hours") });
  });

  it("says hours as a person counts them", () => {
    expect(hoursText(1)).toBe("1 hour");
    expect(hoursText(20)).toBe("20 hours");
    expect(hoursText(24)).toBe("1 day");
    expect(hoursText(96)).toBe("4 days");
    expect(hoursText(108)).toBe("4 days 12 hours");
    expect(hoursText(8784)).toBe("366 days");
  });
});
