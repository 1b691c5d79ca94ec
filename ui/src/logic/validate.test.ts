import { describe, expect, it } from "vitest";
import {
  MAX_TEXT_BYTES,
  checkCode,
  checkFestival,
  checkMessage,
  checkName,
  checkPeerLimit,
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
  it("name must not be empty or over 48 bytes", () => {
    expect(checkName(" ").ok).toBe(false);
    expect(checkName("é".repeat(25)).ok).toBe(false);
    expect(checkName("Ana").ok).toBe(true);
  });
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
