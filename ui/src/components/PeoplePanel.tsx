import { toApiError } from "../api";
import { useState, type FormEvent } from "react";
import type { PeerView } from "../model";
import { lastSeen } from "../logic/format";
import { authorFromPeer, plainName } from "../logic/person";
import { checkCode } from "../logic/validate";
import { Avatar } from "./Avatar";
import { ScanButton } from "./ScanCode";
import { CloseIcon, CloudIcon, MessageIcon, RouteIcon, WifiIcon } from "./Icons";
import { PersonName, PersonWarnings } from "./PersonName";

export type PathKind = "lan" | "relay" | "seen" | "via";

/**
 * How we reach a peer now: a LAN data channel, the relay, seen on the LAN but
 * not linked (peer limit), or only through others carrying messages.
 */
export function pathOf(p: Pick<PeerView, "path" | "discovered">): PathKind {
  switch (p.path) {
    case "lan":
      return "lan";
    case "relay":
      return "relay";
    default:
      return p.discovered ? "seen" : "via";
  }
}

const PATH_LABEL: Record<PathKind, string> = { lan: "LAN direct", relay: "Relay", seen: "On this Wi-Fi", via: "Via others" };

export function PathChip({ kind }: { kind: PathKind }) {
  const Icon = kind === "lan" || kind === "seen" ? WifiIcon : kind === "relay" ? CloudIcon : RouteIcon;
  return (
    <span className={`chip chip-${kind}`}>
      <Icon width={12} height={12} /> {PATH_LABEL[kind]}
    </span>
  );
}

/** People first by how close they are, then by when they were last seen. */
export function sortPeople(peers: readonly PeerView[]): PeerView[] {
  const rank = (p: PeerView) => (p.linked ? 0 : p.discovered ? 1 : 2);
  return [...peers].sort((a, b) => rank(a) - rank(b) || Number(b.last_seen ?? 0) - Number(a.last_seen ?? 0));
}

function VerifyForm({ onVerify }: { onVerify: (code: string) => Promise<PeerView> }) {
  const [code, setCode] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<PeerView | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e?: FormEvent, scanned?: string) => {
    e?.preventDefault();
    const value = scanned ?? code;
    const c = checkCode(value);
    setDone(null);
    if (!c.ok) return setError(c.error);
    setBusy(true);
    setError(null);
    try {
      const p = await onVerify(value.trim());
      setDone(p);
      setCode("");
    } catch (err) {
      // Keep what was pasted so it can be corrected.
      setError(`Could not verify: ${toApiError(err).message}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="verify" onSubmit={submit} noValidate>
      <div className="field">
        <span>Verify someone</span>
        <div className="verify-row">
          <input
            value={code}
            onChange={(e) => {
              setCode(e.target.value);
              setError(null);
            }}
            placeholder="Paste their code"
            aria-label="Their code"
            aria-invalid={error ? true : undefined}
          />
          <button type="submit" className="btn btn-primary btn-sm" disabled={busy}>
            Verify
          </button>
          <ScanButton
            onCode={(scanned) => {
              setCode(scanned);
              void submit(undefined, scanned);
            }}
          />
        </div>
      </div>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      {done && (
        <p className="form-ok" role="status">
          <PersonName author={authorFromPeer(done)} peer={done.peer} /> is verified.
        </p>
      )}
    </form>
  );
}

export interface PeoplePanelProps {
  peers: readonly PeerView[];
  onClose: () => void;
  onMessage: (peer: string) => void;
  onVerify: (code: string) => Promise<PeerView>;
}

export function PeoplePanel({ peers, onClose, onMessage, onVerify }: PeoplePanelProps) {
  const sorted = sortPeople(peers);
  const inReach = peers.filter((p) => p.linked || p.discovered).length;
  return (
    <aside className="people" aria-label="People nearby">
      <header className="panel-head">
        <div>
          <h2>People nearby</h2>
          <span className="muted small">{inReach} in reach · {peers.length} known</span>
        </div>
        <button type="button" className="icon-btn" onClick={onClose} aria-label="Close people">
          <CloseIcon />
        </button>
      </header>
      <VerifyForm onVerify={onVerify} />
      <ul className="people-list">
        {sorted.length === 0 && <li className="empty-hint muted">No one found yet. People on the same Wi-Fi appear here on their own.</li>}
        {sorted.map((p) => {
          const who = authorFromPeer(p);
          const label = plainName(who);
          return (
            <li key={p.peer} className={`person${p.linked || p.discovered ? "" : " away"}${p.name_clash || p.equivocated ? " warned" : ""}`}>
              <Avatar id={p.peer} name={p.name ?? "?"} />
              <div className="person-main">
                <div className="person-name">
                  <PersonName author={who} peer={p.peer} />
                </div>
                <div className="person-sub">
                  <PathChip kind={pathOf(p)} />
                  <span className="muted tiny">{p.linked ? "connected" : `seen ${lastSeen(p.last_seen)}`}</span>
                </div>
                <span className="fp" title={p.verified ? "Their fingerprint, compared in person" : "Their fingerprint: compare it with theirs in person to verify them"}>
                  {p.verified ? "Verified" : "Not verified"} · <code>{p.fingerprint}</code>
                </span>
                <PersonWarnings author={who} brief />
              </div>
              <button type="button" className="icon-btn" onClick={() => onMessage(p.peer)} title={`Message ${label}`} aria-label={`Message ${label}`}>
                <MessageIcon />
              </button>
            </li>
          );
        })}
      </ul>
    </aside>
  );
}
