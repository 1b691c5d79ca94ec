import { toApiError } from "../api";
import { useId, useState, type FormEvent } from "react";
import type { Settings } from "../model";
import { checkFestival, checkName, checkPeerLimit, checkRelayId, checkRelayUrl, type Check } from "../logic/validate";

interface Draft {
  name: string;
  festival: string;
  relay_url: string;
  relay_id: string;
  peer_limit: string;
  interfaces: string;
}

function toDraft(s: Settings): Draft {
  return {
    name: s.name,
    festival: s.festival,
    relay_url: s.relay_url ?? "",
    relay_id: s.relay_id ?? "",
    peer_limit: s.peer_limit === null || s.peer_limit === undefined ? "" : String(s.peer_limit),
    interfaces: (s.interfaces ?? []).join(", "),
  };
}

function fromDraft(base: Settings, d: Draft): Settings {
  return {
    ...base,
    name: d.name.trim(),
    festival: d.festival.trim(),
    relay_url: d.relay_url.trim() === "" ? null : d.relay_url.trim(),
    relay_id: d.relay_id.trim() === "" ? null : d.relay_id.trim(),
    peer_limit: d.peer_limit.trim() === "" ? null : Number(d.peer_limit),
    interfaces: d.interfaces
      .split(/[\s,]+/)
      .map((x) => x.trim())
      .filter(Boolean),
  };
}

/** The node's error codes for settings (docs/app-api.md), by the field they are about. */
const FIELD_OF_CODE: Partial<Record<string, keyof Draft>> = {
  invalid_name: "name",
  invalid_festival: "festival",
  invalid_relay_url: "relay_url",
  invalid_relay_id: "relay_id",
  invalid_peer_limit: "peer_limit",
  invalid_interface: "interfaces",
};

function checks(d: Draft): Record<keyof Draft, Check> {
  return {
    name: checkName(d.name),
    festival: checkFestival(d.festival.trim()),
    relay_url: checkRelayUrl(d.relay_url),
    relay_id: checkRelayId(d.relay_id),
    peer_limit: checkPeerLimit(d.peer_limit),
    interfaces: { ok: true },
  };
}

export function SettingsForm({ settings, onSave }: { settings: Settings; onSave: (s: Settings) => Promise<Settings> }) {
  const uid = useId();
  const [draft, setDraft] = useState<Draft>(() => toDraft(settings));
  const [shown, setShown] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ field: keyof Draft | null; message: string } | null>(null);
  const [saved, setSaved] = useState(false);

  const c = checks(draft);
  const valid = Object.values(c).every((x) => x.ok);
  const err = (k: keyof Draft) => {
    const x = c[k];
    if (shown && !x.ok) return x.error;
    return error?.field === k ? error.message : null;
  };

  const set = (k: keyof Draft) => (e: { target: { value: string } }) => {
    setDraft((d) => ({ ...d, [k]: e.target.value }));
    setSaved(false);
    setError(null);
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setShown(true);
    if (!valid) return;
    setBusy(true);
    try {
      const next = await onSave(fromDraft(settings, draft));
      setDraft(toDraft(next));
      setSaved(true);
    } catch (ex) {
      // The form keeps what was typed; the node's reason goes under its field.
      const a = toApiError(ex);
      setError({ field: FIELD_OF_CODE[a.code] ?? null, message: a.message });
    } finally {
      setBusy(false);
    }
  };

  const field = (k: keyof Draft, label: string, hint: string, extra: Record<string, unknown> = {}) => {
    const e = err(k);
    const id = `${uid}-${k}`;
    return (
      <div className="field">
        <label htmlFor={id}>{label}</label>
        <input id={id} value={draft[k]} onChange={set(k)} aria-invalid={e ? true : undefined} aria-describedby={`${id}-hint`} {...extra} />
        {e ? (
          <span className="field-error" id={`${id}-hint`}>
            {e}
          </span>
        ) : (
          <span className="hint" id={`${id}-hint`}>
            {hint}
          </span>
        )}
      </div>
    );
  };

  return (
    <form className="settings" onSubmit={submit} noValidate>
      {field("name", "Display name", "What people nearby see.")}
      {field("festival", "Festival id", "You only link with devices of the same festival. a-z, 0-9, - _ .", { spellCheck: false, autoCapitalize: "off" })}
      {field("relay_url", "Relay URL", "Used when devices can’t reach each other directly. Empty: no relay.", { spellCheck: false, placeholder: "wss://host:port" })}
      {field("relay_id", "Relay id", "Optional: the relay’s id, from its operator. Set, only that relay is used.", {
        spellCheck: false,
        autoCapitalize: "off",
        autoComplete: "off",
        placeholder: "any relay",
      })}
      {field("peer_limit", "Peer limit", "Most links open at once. Empty: decided by battery.", { inputMode: "numeric", placeholder: "automatic" })}
      {field("interfaces", "Network interfaces", "Comma-separated, e.g. wlan0. Empty: all.", { spellCheck: false, placeholder: "all" })}
      {error && (
        <p className="form-error" role="alert">
          Not saved: {error.message}
        </p>
      )}
      {saved && (
        <p className="form-ok" role="status">
          Saved.
        </p>
      )}
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Saving…" : "Save"}
        </button>
      </div>
    </form>
  );
}
