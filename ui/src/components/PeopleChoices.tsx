import { useCallback, useEffect, useState } from "react";
import { toApiError } from "../api";
import { useApi } from "../ApiContext";
import type { PersonChoiceView } from "../model";
import { dmKey } from "../logic/conversation";
import { PersonName } from "./PersonName";

export interface PeopleChoicesProps {
  onMute: (conversation: string, muted: boolean) => Promise<void>;
  onBlock: (peer: string, blocked: boolean) => Promise<void>;
}

/** People muted or blocked on this device, each with the button that undoes it. */
export function PeopleChoices({ onMute, onBlock }: PeopleChoicesProps) {
  const api = useApi();
  const [list, setList] = useState<readonly PersonChoiceView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = useCallback(() => {
    api.peopleChoices().then(setList, (e) => setError(toApiError(e).message));
  }, [api]);
  useEffect(reload, [reload]);

  const undo = (f: () => Promise<void>) => {
    setError(null);
    f().then(reload, (e) => setError(toApiError(e).message));
  };

  return (
    <section className="settings-section" aria-labelledby="choices-head">
      <h2 id="choices-head" className="section-title">
        Muted and blocked people
      </h2>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      {list === null ? (
        <p className="muted small">Loading…</p>
      ) : list.length === 0 ? (
        <p className="muted small">Nobody. Mute or block someone from the top of your conversation with them.</p>
      ) : (
        <ul className="choices">
          {list.map((c) => (
            <li key={c.peer}>
              <span>
                <PersonName author={c.sender} peer={c.peer} />
                <span className="choice-what"> · {[c.blocked && "blocked", c.muted && "muted"].filter(Boolean).join(", ")}</span>
              </span>
              <span className="choice-undo">
                {c.muted && (
                  <button type="button" className="btn btn-sm btn-ghost" onClick={() => undo(() => onMute(dmKey(c.peer), false))}>
                    Unmute
                  </button>
                )}
                {c.blocked && (
                  <button type="button" className="btn btn-sm btn-ghost" onClick={() => undo(() => onBlock(c.peer, false))}>
                    Unblock
                  </button>
                )}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
