import { toApiError } from "../api";
import { useId, useState, type FormEvent, type ReactNode } from "react";
import type { Settings } from "../model";
import {
  DEFAULT_LIFETIME_HOURS,
  DEFAULT_STORAGE_MB,
  checkFestival,
  checkLifetimeHours,
  checkName,
  checkPeerLimit,
  checkOrganiser,
  checkRelayId,
  checkRelayUrl,
  checkStorageMb,
  hoursText,
  wholeNumber,
  type Check,
} from "../logic/validate";

interface Draft {
  name: string;
  festival: string;
  relay_url: string;
  relay_id: string;
  organiser: string;
  peer_limit: string;
  interfaces: string;
  storage_mb: string;
  message_lifetime_hours: string;
}

const numberText = (n: number | null | undefined) => (n === null || n === undefined ? "" : String(n));

function toDraft(s: Settings): Draft {
  return {
    name: s.name,
    festival: s.festival,
    relay_url: s.relay_url ?? "",
    relay_id: s.relay_id ?? "",
    organiser: s.organiser ?? "",
    peer_limit: numberText(s.peer_limit),
    interfaces: (s.interfaces ?? []).join(", "),
    storage_mb: numberText(s.storage_mb),
    message_lifetime_hours: numberText(s.message_lifetime_hours),
  };
}

function fromDraft(base: Settings, d: Draft): Settings {
  return {
    ...base,
    name: d.name.trim(),
    festival: d.festival.trim(),
    relay_url: d.relay_url.trim() === "" ? null : d.relay_url.trim(),
    relay_id: d.relay_id.trim() === "" ? null : d.relay_id.trim(),
    organiser: d.organiser.trim() === "" ? null : d.organiser.trim(),
    peer_limit: d.peer_limit.trim() === "" ? null : Number(d.peer_limit),
    interfaces: d.interfaces
      .split(/[\s,]+/)
      .map((x) => x.trim())
      .filter(Boolean),
    // Checked before: a whole number or empty.
    storage_mb: wholeNumber(d.storage_mb) ?? null,
    message_lifetime_hours: wholeNumber(d.message_lifetime_hours) ?? null,
  };
}

/** The storage fields: the node answers one code (`invalid_storage`) for both. */
const STORAGE: readonly (keyof Draft)[] = ["storage_mb", "message_lifetime_hours"];
type Where = keyof Draft | "storage";

/** The node's error codes for settings (docs/app-api.md), by the field they are about. */
const FIELD_OF_CODE: Partial<Record<string, Where>> = {
  invalid_name: "name",
  invalid_festival: "festival",
  invalid_relay_url: "relay_url",
  invalid_relay_id: "relay_id",
  invalid_organiser: "organiser",
  invalid_peer_limit: "peer_limit",
  invalid_interface: "interfaces",
  invalid_storage: "storage",
};

function checks(d: Draft): Record<keyof Draft, Check> {
  return {
    // The name is sent trimmed (and the app trims it too).
    name: checkName(d.name.trim()),
    festival: checkFestival(d.festival.trim()),
    relay_url: checkRelayUrl(d.relay_url),
    relay_id: checkRelayId(d.relay_id),
    organiser: checkOrganiser(d.organiser),
    peer_limit: checkPeerLimit(d.peer_limit),
    interfaces: { ok: true },
    storage_mb: checkStorageMb(d.storage_mb),
    message_lifetime_hours: checkLifetimeHours(d.message_lifetime_hours),
  };
}

/** What the lifetime field says it means, as it is typed. */
function lifetimeHint(raw: string): string {
  const n = wholeNumber(raw);
  const now = n === null ? `a week (${DEFAULT_LIFETIME_HOURS} hours)` : n !== undefined && checkLifetimeHours(raw).ok ? hoursText(n) : null;
  return `Set it to the festival’s length: older messages are deleted and no longer passed on.${now ? ` Now: ${now}.` : ""}`;
}

export function SettingsForm({ settings, onSave }: { settings: Settings; onSave: (s: Settings) => Promise<Settings> }) {
  const uid = useId();
  const [draft, setDraft] = useState<Draft>(() => toDraft(settings));
  const [shown, setShown] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ field: Where | null; message: string } | null>(null);
  const [saved, setSaved] = useState(false);

  const c = checks(draft);
  const valid = Object.values(c).every((x) => x.ok);
  const err = (k: keyof Draft) => {
    const x = c[k];
    if (shown && !x.ok) return x.error;
    return error?.field === k ? error.message : null;
  };
  const storageError = error?.field === "storage" ? error.message : null;
  // The node's storage error is about the field that was changed (both if neither or both were).
  const savedDraft = toDraft(settings);
  const changed = STORAGE.filter((k) => draft[k].trim() !== savedDraft[k]);
  const storageBlamed = (k: keyof Draft) => storageError !== null && (changed.length === 0 || changed.includes(k));

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

  const storageErrorId = `${uid}-storage-error`;
  const field = (k: keyof Draft, label: ReactNode, hint: string, extra: Record<string, unknown> = {}) => {
    const e = err(k);
    const id = `${uid}-${k}`;
    const blamed = storageBlamed(k);
    return (
      <div className="field">
        <label htmlFor={id}>{label}</label>
        <input
          id={id}
          value={draft[k]}
          onChange={set(k)}
          aria-invalid={e || blamed ? true : undefined}
          aria-describedby={blamed ? `${id}-hint ${storageErrorId}` : `${id}-hint`}
          {...extra}
        />
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
      {field("name", "Display name", "What people nearby see, with your fingerprint or, for those who verified you, a check mark the app draws.")}
      {field("festival", "Festival id", "You only link with devices of the same festival. a-z, 0-9, - _ .", { spellCheck: false, autoCapitalize: "off" })}
      {field("relay_url", "Relay URL", "Used when devices can’t reach each other directly. Several instances: separate them with spaces; the app uses one and moves on when it fails. Empty: no relay.", { spellCheck: false, placeholder: "wss://host:port" })}
      {field("relay_id", "Relay id", "Optional: the relay’s id, from its operator. Set, only that relay is used.", {
        spellCheck: false,
        autoCapitalize: "off",
        autoComplete: "off",
        placeholder: "any relay",
      })}
      {field("organiser", "Organiser key", "Optional: the festival organiser’s key, as the festival publishes it. Their announcements are shown pinned at the top; nobody else’s are.", {
        spellCheck: false,
        autoCapitalize: "off",
        autoComplete: "off",
        placeholder: "no announcements",
      })}
      {field("peer_limit", "Peer limit", "Most links open at once. Empty: decided by battery.", { inputMode: "numeric", placeholder: "automatic" })}
      {field("interfaces", "Network interfaces", "Comma-separated, e.g. wlan0. Empty: all.", { spellCheck: false, placeholder: "all" })}
      <fieldset className="field-group">
        <legend>Messages on this device</legend>
        {field(
          "storage_mb",
          "Storage for messages (MB)",
          `How much space messages may take. Empty: ${DEFAULT_STORAGE_MB} MB, right for a phone. When it is full, other people’s oldest messages make room; yours and DMs to you stay.`,
          { inputMode: "numeric", placeholder: String(DEFAULT_STORAGE_MB) },
        )}
        {field("message_lifetime_hours", "Keep messages for (hours)", lifetimeHint(draft.message_lifetime_hours), {
          inputMode: "numeric",
          placeholder: `${DEFAULT_LIFETIME_HOURS} (a week)`,
        })}
        {storageError && (
          <span className="field-error" id={storageErrorId}>
            {storageError}
          </span>
        )}
      </fieldset>
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
