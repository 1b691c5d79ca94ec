import { useId, useState } from "react";
import { toApiError } from "../api";
import type { Author } from "../model";
import { PersonName } from "./PersonName";

export interface GroupFormProps {
  /** People to pick from: those nearby and those I have DMs with. */
  people: readonly { peer: string; who: Author | undefined }[];
  /** A new group: its name is asked; inviting to one: only people. */
  withName: boolean;
  /** Up to this many may be picked (32 in a group, me included). */
  max: number;
  submitLabel: string;
  onSubmit: (name: string, members: string[]) => Promise<unknown>;
}

/**
 * A group's name and the people in it: picked from a list, or pasted as
 * contact codes (one per line, as a friend's QR code reads). Errors, the
 * node's too, are shown in place; nothing typed is lost.
 */
export function GroupForm({ people, withName, max, submitLabel, onSubmit }: GroupFormProps) {
  const [name, setName] = useState("");
  const [picked, setPicked] = useState<readonly string[]>([]);
  const [codes, setCodes] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = useId();
  const pasted = codes
    .split(/[\s,]+/)
    .map((c) => c.trim())
    .filter(Boolean);
  const members = [...new Set([...picked, ...pasted])];
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    if (busy) return;
    if (withName && !name.trim()) return setError("Give the group a name.");
    if (members.length === 0) return setError("Pick at least one person, or paste their code.");
    if (members.length > max) return setError(`At most ${max} people.`);
    setBusy(true);
    setError(null);
    try {
      await onSubmit(name.trim(), members);
    } catch (err) {
      setError(toApiError(err).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="group-form" onSubmit={submit} noValidate aria-describedby={error ? `${id}-error` : undefined}>
      {withName && (
        <div className="field">
          <label htmlFor={`${id}-name`}>Group name</label>
          <input id={`${id}-name`} value={name} maxLength={64} autoFocus placeholder="Camp crew" onChange={(e) => setName(e.target.value)} />
        </div>
      )}
      <fieldset className="field">
        <legend>People</legend>
        {people.length === 0 && <p className="muted small">Nobody nearby yet: paste their codes below.</p>}
        <ul className="group-people">
          {people.map((p) => (
            <li key={p.peer}>
              <label>
                <input
                  type="checkbox"
                  checked={picked.includes(p.peer)}
                  onChange={(e) => setPicked((l) => (e.target.checked ? [...l, p.peer] : l.filter((x) => x !== p.peer)))}
                />
                <PersonName author={p.who} peer={p.peer} compact />
              </label>
            </li>
          ))}
        </ul>
      </fieldset>
      <div className="field">
        <label htmlFor={`${id}-codes`}>Or their contact codes</label>
        <textarea id={`${id}-codes`} rows={2} value={codes} placeholder="festival:…" onChange={(e) => setCodes(e.target.value)} />
        <span className="hint">Only the people in it can read a group; devices that carry its messages learn who is in it, not what they say.</span>
      </div>
      {error && (
        <p className="form-error" id={`${id}-error`} role="alert">
          {error}
        </p>
      )}
      <button type="submit" className="btn btn-primary" disabled={busy}>
        {busy ? "…" : submitLabel}
      </button>
    </form>
  );
}
