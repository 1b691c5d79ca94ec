// A person's name as the screen shows it, everywhere: the name people chose,
// and beside it what the app itself knows, drawn so no name can imitate it:
// the verified mark (an icon, fingerprints compared in person) or the short
// fingerprint, and warnings for a lookalike name and for conflicting
// messages. Names themselves cannot hold check marks or "verified" (the
// node refuses them), and everything the app adds sits outside the name's
// text, which alone is cut short when space runs out.
import type { Author } from "../model";
import { shortId } from "../logic/format";
import { UNNAMED } from "../logic/person";
import { AlertIcon } from "./Icons";

export const VERIFIED_LABEL = "Verified in person";
const VERIFIED_TIP = "Verified in person: you compared this person’s code face to face.";
const FINGERPRINT_TIP =
  "The start of their fingerprint. Names can be copied, this cannot: compare the whole fingerprint in person (People nearby) to verify them.";
export const CLASH_LABEL = "looks like another name";
export const CLASH_TIP =
  "This name looks like yours, a verified contact’s or another person’s. It may be someone else using it: compare fingerprints before you trust it.";
export const EQUIVOCATED_LABEL = "sent conflicting messages";
export const EQUIVOCATED_TIP =
  "This device signed two different messages for one place in its history. Its messages may not be what others see.";

/** The app's own verified mark: a filled seal with a check, never text. */
export function VerifiedMark() {
  return (
    <span className="pn-verified" role="img" aria-label={VERIFIED_LABEL} title={VERIFIED_TIP}>
      <svg viewBox="0 0 24 24" width="1.05em" height="1.05em" aria-hidden="true" focusable="false">
        <path
          fill="currentColor"
          d="M12 1.6l2.5 1.8 3.1-.1 1 2.9 2.5 1.9-.9 3 .9 2.9-2.5 1.9-1 2.9-3.1-.1L12 22.4l-2.5-1.8-3.1.1-1-2.9-2.5-1.9.9-2.9-.9-3 2.5-1.9 1-2.9 3.1.1z"
        />
        <path d="m8.2 12.2 2.6 2.6 5-5.3" fill="none" stroke="#fff" strokeWidth="2.3" strokeLinecap="round" strokeLinejoin="round" />
      </svg>
    </span>
  );
}

/** The short fingerprint chip: "3F2A". */
export function FingerprintChip({ fingerprint, title = FINGERPRINT_TIP }: { fingerprint: string; title?: string }) {
  return (
    <span className="pn-fp" title={title}>
      <span className="sr-only">fingerprint</span> {fingerprint}
    </span>
  );
}

function Warning({ label, tip, compact }: { label: string; tip: string; compact: boolean }) {
  return (
    <span className={`pn-warn${compact ? " compact" : ""}`} title={tip}>
      <AlertIcon width="1em" height="1em" />
      {compact ? <span className="sr-only">{label}</span> : label}
    </span>
  );
}

export interface PersonNameProps {
  /** What the node says about them; undefined: nothing known yet. */
  author?: Author | undefined;
  /** Their id, shown shortened while nothing else is known. */
  peer?: string | undefined;
  /** Ourselves: "You". */
  me?: boolean;
  /** Tight rows (the conversation list): warnings as icons with their words in the tooltip. */
  compact?: boolean;
  className?: string;
}

export function PersonName({ author, peer, me = false, compact = false, className }: PersonNameProps) {
  const cls = `pn${className ? ` ${className}` : ""}`;
  if (me) {
    return (
      <span className={cls}>
        <span className="pn-name">You</span>
      </span>
    );
  }
  if (!author) {
    return (
      <span className={cls}>
        <span className="pn-name pn-unknown" title="Not known yet: the start and end of their key">
          {peer ? shortId(peer) : "Someone"}
        </span>
      </span>
    );
  }
  return (
    <span className={cls}>
      {/* The spaces between the parts are not drawn (a flex row drops them) but keep the words apart when read aloud. */}
      <span className={`pn-name${author.name === null ? " pn-unnamed" : ""}`}>{author.name ?? UNNAMED}</span>{" "}
      {author.verified ? <VerifiedMark /> : <FingerprintChip fingerprint={author.short_fingerprint} />}
      {author.name_clash && <> <Warning label={CLASH_LABEL} tip={CLASH_TIP} compact={compact} /></>}
      {author.equivocated && <> <Warning label={EQUIVOCATED_LABEL} tip={EQUIVOCATED_TIP} compact={compact} /></>}
    </span>
  );
}

/**
 * The warnings in full, where there is room to explain them (a DM's header,
 * the people panel); nothing when there is nothing to warn about.
 */
export function PersonWarnings({ author, fingerprint, brief = false }: { author: Author | undefined; fingerprint?: string | undefined; brief?: boolean }) {
  if (!author || (!author.name_clash && !author.equivocated)) return null;
  if (brief) {
    // A list row: what to do, in a line each; the chips above carry the rest.
    return (
      <div className="pn-explain brief" role="note">
        {author.name_clash && <p>Compare fingerprints before you trust this name.</p>}
        {author.equivocated && <p>Its messages may not be what others see.</p>}
      </div>
    );
  }
  return (
    <div className="pn-explain" role="note">
      <AlertIcon width={16} height={16} />
      <div>
        {author.name_clash && (
          <p>
            <strong>This name looks like another name.</strong> It looks like yours, a verified contact’s or another person’s. Before you trust it,
            compare fingerprints{fingerprint ? <> (theirs is <code>{fingerprint}</code>)</> : null} in person.
          </p>
        )}
        {author.equivocated && (
          <p>
            <strong>This device sent conflicting messages.</strong> It signed two different messages for one place in its history, so its messages
            may not be what others see.
          </p>
        )}
      </div>
    </div>
  );
}
