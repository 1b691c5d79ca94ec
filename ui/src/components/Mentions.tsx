import { createContext, useContext } from "react";
import { splitMentions } from "../logic/mentions";

/** The names a text may mention (people known here) and mine. */
export interface MentionNames {
  names: readonly string[];
  me: string;
}

export const MentionContext = createContext<MentionNames>({ names: [], me: "" });

/** A message's text with "@name" of known people highlighted, mentions of me the most. */
export function MentionText({ text }: { text: string }) {
  const { names, me } = useContext(MentionContext);
  const parts = splitMentions(text, names, me);
  if (parts.length === 1 && !parts[0]?.mention) return <>{text}</>;
  return (
    <>
      {parts.map((p, i) =>
        p.mention ? (
          <mark key={i} className={`mention${p.mention.me ? " of-me" : ""}`}>
            {p.text}
          </mark>
        ) : (
          <span key={i}>{p.text}</span>
        ),
      )}
    </>
  );
}
