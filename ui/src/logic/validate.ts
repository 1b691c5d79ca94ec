// Checks on what a person types, with messages meant for them. The node
// checks again and its errors are shown as they come; these give the answer
// before a round trip, and as the person types.

/** The core's text body limit (crates/core/src/body.rs MAX_TEXT_BYTES). */
export const MAX_TEXT_BYTES = 4000;
/** The core's display name limit (MAX_NAME_BYTES). */
export const MAX_NAME_BYTES = 48;
/** Room ids are at most this long (RoomId::MAX_LEN). */
export const MAX_ROOM_LEN = 64;
/** Festival ids: 1 to 32 of a-z, 0-9, '-', '_', '.' (check_festival in the node). */
export const FESTIVAL_RE = /^[a-z0-9._-]{1,32}$/;

const encoder = new TextEncoder();

export function utf8Bytes(s: string): number {
  return encoder.encode(s).length;
}

export type Check = { ok: true } | { ok: false; error: string };
const OK: Check = { ok: true };
const fail = (error: string): Check => ({ ok: false, error });

export function checkMessage(text: string): Check {
  if (text.trim().length === 0) return fail("Type a message first.");
  const n = utf8Bytes(text);
  if (n > MAX_TEXT_BYTES) return fail(`Too long: ${n} of ${MAX_TEXT_BYTES} bytes. Shorten it or split it in two.`);
  return OK;
}

export function checkName(name: string): Check {
  if (name.trim().length === 0) return fail("Pick a name people will recognise.");
  const n = utf8Bytes(name);
  if (n > MAX_NAME_BYTES) return fail(`That name is too long (${n} of ${MAX_NAME_BYTES} bytes).`);
  return OK;
}

export function checkFestival(id: string): Check {
  if (id.length === 0) return fail("Enter the festival id (printed on your wristband or the venue signs).");
  if (id.length > 32) return fail(`A festival id has at most 32 characters (this one has ${id.length}).`);
  if (!FESTIVAL_RE.test(id)) return fail("Use only a-z, 0-9, '-', '_' and '.' in the festival id, no spaces or capitals.");
  return OK;
}

/**
 * The room id a name becomes, as the core normalises it ("Main Stage" ->
 * "main-stage"); used to show it while typing. The node decides.
 */
export function roomIdPreview(name: string): string {
  let s = "";
  for (const c of name.trim().toLowerCase()) {
    if (/^[a-z0-9_.:]$/.test(c)) s += c;
    else if ((/\s/.test(c) || c === "-") && !s.endsWith("-")) s += "-";
  }
  return s.replace(/^-+|-+$/g, "");
}

export function checkRoomName(name: string): Check {
  const id = roomIdPreview(name);
  if (id.length === 0) return fail("Give the room a name with letters or digits, e.g. “Main Stage” or “Camp B12”.");
  if (id.length > MAX_ROOM_LEN) return fail(`Room names are at most ${MAX_ROOM_LEN} characters.`);
  if (id === "dm") return fail("“dm” is reserved for direct messages; pick another name.");
  return OK;
}

export function checkRelayUrl(url: string): Check {
  if (url.trim() === "") return OK; // no relay
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    return fail("The relay address must be a URL such as ws://192.168.1.10:7070 or wss://relay.example.");
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") return fail("The relay address starts with ws:// or wss://.");
  return OK;
}

/**
 * A pinned relay id: the relay's PeerId, 64 hex digits (any case, spaces
 * around ignored). Empty: no pin. The node also checks that it is a public
 * key (`invalid_relay_id`).
 */
export function checkRelayId(id: string): Check {
  const t = id.trim();
  if (t === "") return OK; // any relay that proves its key
  if (!/^[0-9a-fA-F]{64}$/.test(t)) return fail("A relay id is 64 characters of 0-9 and a-f, as the relay shows it.");
  return OK;
}

/** The app's largest peer limit (MAX_PEER_LIMIT in crates/app/src/settings.rs). */
export const MAX_PEER_LIMIT = 32;

export function checkPeerLimit(raw: string): Check {
  if (raw.trim() === "") return OK; // automatic
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PEER_LIMIT) return fail(`Peer limit: a whole number from 1 to ${MAX_PEER_LIMIT}, or empty for automatic.`);
  return OK;
}

/** Contact codes: `festival:` and 64 hex digits (the bare hex works too); see docs/app-api.md. */
const CODE_RE = /^(festival:)?[0-9a-f]{64}$/i;

/** A code pasted to verify someone. The node checks it again (and that it is not yours). */
export function checkCode(code: string): Check {
  const c = code.trim();
  if (c.length === 0) return fail("Paste the code shown under their QR code.");
  if (!CODE_RE.test(c)) return fail("That is not a Festival Chat code. It looks like festival: followed by 64 letters and digits (0-9, a-f).");
  return OK;
}
