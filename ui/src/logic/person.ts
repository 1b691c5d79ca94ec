// A person as the screen names them. A name is a claim anyone can make, so it
// never shows alone: with the verified mark (codes compared in person) or the
// short fingerprint, which a lookalike cannot copy, plus the node's warnings.
import type { Author, PeerView } from "../model";
import { shortId } from "./format";

/** Characters of the fingerprint shown beside an unverified name ("3F2A"). */
export const SHORT_FINGERPRINT_LEN = 4;

/** The same shape as a message's `sender`, from the people list. */
export function authorFromPeer(p: PeerView): Author {
  return {
    name: p.name,
    short_fingerprint: p.fingerprint.replace(/[^0-9a-fA-F]/g, "").slice(0, SHORT_FINGERPRINT_LEN).toUpperCase(),
    verified: p.verified,
    name_clash: p.name_clash,
    equivocated: p.equivocated,
  };
}

/** What is shown for a person who has not told their name. */
export const UNNAMED = "Unnamed";

/**
 * The name as plain text, for what cannot hold the marks (tooltips, labels
 * read aloud): "Ana, verified in person" or "Ana · 3F2A", with the warnings.
 */
export function plainName(a: Author | undefined, fallbackId?: string): string {
  // Nothing known yet: the key itself, shortened, which no one else has.
  if (!a) return fallbackId ? shortId(fallbackId) : "Someone";
  const name = a.name ?? UNNAMED;
  let s = a.verified ? `${name}, verified in person` : `${name} · ${a.short_fingerprint}`;
  if (a.name_clash) s += ", looks like another name";
  if (a.equivocated) s += ", sent conflicting messages";
  return s;
}

/** Merge what is newly learnt about a person into what was known. */
export function mergeAuthor(known: Author | undefined, next: Author): Author {
  if (!known) return next;
  // A proven equivocation does not go away (the node keeps the proof).
  const equivocated = known.equivocated || next.equivocated;
  const merged = { ...next, equivocated };
  return sameAuthor(known, merged) ? known : merged;
}

export function sameAuthor(a: Author, b: Author): boolean {
  return (
    a.name === b.name &&
    a.short_fingerprint === b.short_fingerprint &&
    a.verified === b.verified &&
    a.name_clash === b.name_clash &&
    a.equivocated === b.equivocated
  );
}
