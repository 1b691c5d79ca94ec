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

// ---- Display names ---------------------------------------------------------
// The protocol's name rules (crates/core/src/name.rs check_name), with the
// app's words for each (crates/app/src/settings.rs check_name). Checked here
// as far as a browser can; the node decides the rest (e.g. lookalike letters
// of other scripts), and its `invalid_name` message is shown as it comes.

/** The app's messages, word for word, so the answer is the same before and after a round trip. */
export const NAME_MESSAGES = {
  empty: "Pick a name so people know who is writing.",
  tooLong: `Names are at most ${MAX_NAME_BYTES} bytes; pick a shorter one.`,
  invisible: "Names cannot hold invisible or direction-changing characters, tabs or line breaks.",
  spacing: "Use single spaces between the words of your name.",
  marks: "Too many accents on one letter.",
  claimsVerified: "Names cannot claim to be verified or official: the app shows who is verified.",
} as const;

/**
 * Characters that draw nothing or turn text around: controls (U+0000-001F,
 * U+007F-009F), the soft hyphen, zero-width and direction marks
 * (U+200B-200F), bidi embeddings and overrides (U+202A-202E), invisible
 * operators and isolates (U+2060-2064, U+2066-206F), the byte order mark;
 * with them every other control, format, private-use and separator
 * character, the blank-looking letters the core lists, and tag characters.
 */
const INVISIBLE =
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  /[\u0000-\u001F\u007F-\u009F\u00AD\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\u{E0000}-\u{E0FFF}]|[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}]/u;
/** Letters that render as nothing (Hangul fillers, the Braille blank, Khmer inherent vowels, ...): the core's BLANK_LETTERS. */
const BLANK_LETTERS: ReadonlySet<string> = new Set(["\u115F", "\u1160", "\u3164", "\uFFA0", "\u2800", "\u17B4", "\u17B5", "\u180E"]);
/** Check marks and ballot boxes: the app's verified mark must not be imitated. */
const CHECK_MARKS = /[\u2713\u2714\u2611\u2705\u{1F5F8}\u{1F5F9}\u221A\u{10003}\u{10004}]/u;
const MARK = /[\p{Mn}\p{Me}]/u;
const ALPHANUMERIC = /[\p{Alphabetic}\p{N}]/u;
/** Accents one letter may carry (Vietnamese stacks two). */
const MAX_MARKS_PER_CHAR = 2;
/** Words only in-person verification may claim, compared flattened ("Vérified", "VER1FIED"). */
const CLAIM_WORDS = ["verified", "verifie", "official"];
/** Digits and letters people swap, read alike (as the core's skeleton does). */
const READ_AS: Readonly<Record<string, string>> = { "0": "o", "1": "l", i: "l", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b" };

/**
 * A name flattened as the core compares claims: without accents, spaces and
 * punctuation, lowercase, with swapped digits and letters read alike. (The
 * core also folds letters of other scripts that look Latin; the node
 * catches those.)
 */
function flatten(s: string): string {
  let out = "";
  for (const c of s.normalize("NFD").toLowerCase()) {
    if (MARK.test(c) || !ALPHANUMERIC.test(c)) continue;
    out += READ_AS[c] ?? c;
  }
  return out;
}

/**
 * A display name as it will be sent (callers trim it first, as the app
 * does): the core's rules in the core's order; the first problem found is
 * the answer.
 */
export function checkName(name: string): Check {
  if (name.trim().length === 0) return fail(NAME_MESSAGES.empty);
  if (utf8Bytes(name) > MAX_NAME_BYTES) return fail(NAME_MESSAGES.tooLong);
  let marks = 0;
  let prevSpace = true; // no space first
  for (const c of name) {
    if (INVISIBLE.test(c) || BLANK_LETTERS.has(c)) return fail(NAME_MESSAGES.invisible);
    if (/\s/.test(c)) {
      if (c !== " ") return fail(NAME_MESSAGES.invisible);
      if (prevSpace) return fail(NAME_MESSAGES.spacing);
      prevSpace = true;
      marks = 0;
      continue;
    }
    prevSpace = false;
    if (MARK.test(c)) {
      marks += 1;
      if (marks > MAX_MARKS_PER_CHAR) return fail(NAME_MESSAGES.marks);
    } else {
      marks = 0;
    }
    if (CHECK_MARKS.test(c)) return fail(NAME_MESSAGES.claimsVerified);
  }
  if (prevSpace) return fail(NAME_MESSAGES.spacing);
  const flat = flatten(name);
  if (CLAIM_WORDS.some((w) => flat.includes(flatten(w)))) return fail(NAME_MESSAGES.claimsVerified);
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

export function checkOrganiser(id: string): Check {
  const t = id.trim();
  if (t === "") return OK; // no announcements
  if (!/^[0-9a-fA-F]{64}$/.test(t)) return fail("An organiser key is 64 characters of 0-9 and a-f, as the festival publishes it.");
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

// ---- Storage ---------------------------------------------------------------
// The app's bounds (crates/app/src/settings.rs). Empty fields mean the
// defaults; the node answers `invalid_storage` for either field.

/** Smallest storage budget, MiB (MIN_STORAGE_MB): below it the store's log alone would not fit. */
export const MIN_STORAGE_MB = 64;
/** Largest storage budget, MiB (MAX_STORAGE_MB, 64 GiB): beyond it, a typo. */
export const MAX_STORAGE_MB = 65_536;
/** What an empty storage field means (Settings::retention). */
export const DEFAULT_STORAGE_MB = 512;
/** Longest message lifetime, hours (MAX_LIFETIME_HOURS: a year of 366 days). */
export const MAX_LIFETIME_HOURS = 24 * 366;
/** What an empty lifetime means: a week. */
export const DEFAULT_LIFETIME_HOURS = 168;

/** A whole number typed in a field: digits only, spaces around ignored. `null`: empty; `undefined`: not a whole number. */
export function wholeNumber(raw: string): number | null | undefined {
  const t = raw.trim();
  if (t === "") return null;
  return /^\d+$/.test(t) ? Number(t) : undefined;
}

export function checkStorageMb(raw: string): Check {
  const n = wholeNumber(raw);
  if (n === null) return OK; // the default
  if (n === undefined || n < MIN_STORAGE_MB || n > MAX_STORAGE_MB)
    return fail(`Storage: a whole number of MB from ${MIN_STORAGE_MB} to ${MAX_STORAGE_MB}, or empty for ${DEFAULT_STORAGE_MB} MB.`);
  return OK;
}

export function checkLifetimeHours(raw: string): Check {
  const n = wholeNumber(raw);
  if (n === null) return OK; // a week
  if (n === undefined || n < 1 || n > MAX_LIFETIME_HOURS)
    return fail(`Keep messages for 1 to ${MAX_LIFETIME_HOURS} hours (a year), or leave it empty for a week.`);
  return OK;
}

/** Hours as a person counts them: "5 hours", "4 days", "2 days 12 hours". */
export function hoursText(h: number): string {
  if (h < 24) return `${h} ${h === 1 ? "hour" : "hours"}`;
  const d = Math.floor(h / 24);
  const r = h % 24;
  const days = `${d} ${d === 1 ? "day" : "days"}`;
  return r === 0 ? days : `${days} ${r} ${r === 1 ? "hour" : "hours"}`;
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
