import { useCallback, useEffect, useState } from "react";
import { useApi } from "./ApiContext";
import { toApiError } from "./api";
import type { AppState, Settings, Status } from "./model";
import { ErrorBoundary } from "./components/ErrorBoundary";
import { Main } from "./components/Main";
import { Onboarding } from "./components/Onboarding";

export function App() {
  const api = useApi();
  const [app, setApp] = useState<AppState | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(() => {
    api.appState().then(setApp, (e) => setError(toApiError(e).message));
  }, [api]);
  useEffect(load, [load]);
  const retry = () => {
    setError(null);
    load();
  };

  if (error) {
    return (
      <div className="onboarding">
        <div className="onboarding-card">
          <h1>Festival Chat could not start</h1>
          <p className="form-error" role="alert">
            {error}
          </p>
          <button type="button" className="btn btn-primary btn-wide" onClick={retry}>
            Try again
          </button>
        </div>
      </div>
    );
  }
  if (!app) return <div className="splash" aria-busy="true" />;
  if (!app.onboarded) {
    return (
      <Onboarding
        initialName={app.settings.name}
        onDone={(status: Status | null) => {
          // The name given at onboarding is the settings name from now on.
          api.settings().then(
            (settings) => setApp({ ...app, onboarded: true, status, settings }),
            () => setApp({ ...app, onboarded: true, status }),
          );
        }}
      />
    );
  }
  return (
    <ErrorBoundary>
      <Main settings={app.settings} nodeError={app.error?.message ?? null} onSettings={(settings: Settings) => setApp({ ...app, settings, error: null })} />
    </ErrorBoundary>
  );
}
