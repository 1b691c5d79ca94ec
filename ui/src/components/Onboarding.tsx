import { useState, type FormEvent } from "react";
import { useApi } from "../ApiContext";
import { toApiError } from "../api";
import type { Status } from "../model";
import { checkName, MAX_NAME_BYTES, utf8Bytes } from "../logic/validate";
import { LogoMark } from "./Icons";
import { MyCodeCard } from "./MyCodeCard";

/** First start: pick a name, then see your code. */
export function Onboarding({ onDone, initialName = "" }: { onDone: (status: Status | null) => void; initialName?: string }) {
  const api = useApi();
  const [name, setName] = useState(initialName);
  const [touched, setTouched] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<Status | null | undefined>(undefined);

  // Sent trimmed, as the app keeps it.
  const check = checkName(name.trim());
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (!check.ok || busy) return;
    setBusy(true);
    setError(null);
    try {
      setStatus(await api.onboard(name.trim()));
    } catch (err) {
      setError(toApiError(err).message);
    } finally {
      setBusy(false);
    }
  };

  if (status !== undefined) {
    return (
      <div className="onboarding">
        <div className="onboarding-card">
          <h1>You’re in, {name.trim()}!</h1>
          <p className="lead">This is you. Show it to friends so they can verify you in person.</p>
          <MyCodeCard />
          <button type="button" className="btn btn-primary btn-wide" onClick={() => onDone(status)} autoFocus>
            Start chatting
          </button>
        </div>
      </div>
    );
  }

  const shownError = error ?? (touched && !check.ok ? check.error : null);
  return (
    <div className="onboarding">
      <form className="onboarding-card" onSubmit={submit} noValidate>
        <div className="brand-mark" aria-hidden="true">
          <LogoMark size={64} />
        </div>
        <h1>Festival Chat</h1>
        <p className="lead">Chat with the people around you, even when the phone network is down. No account, no server: messages hop from device to device.</p>
        <label className="field">
          <span>What should people call you?</span>
          <input
            autoFocus
            value={name}
            maxLength={96}
            placeholder="Your name"
            aria-invalid={shownError ? true : undefined}
            onChange={(e) => setName(e.target.value)}
            onBlur={() => setTouched(true)}
          />
          <span className="hint">
            Shown to people nearby. {utf8Bytes(name)}/{MAX_NAME_BYTES}
          </span>
        </label>
        {shownError && (
          <p className="form-error" role="alert">
            {shownError}
          </p>
        )}
        <button type="submit" className="btn btn-primary btn-wide" disabled={busy}>
          {busy ? "Creating your identity…" : "Continue"}
        </button>
      </form>
    </div>
  );
}
