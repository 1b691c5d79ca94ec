import { useEffect, useState } from "react";
import type { AnnouncementView } from "../model";
import { nextEnd, running } from "../logic/announcements";
import { clockTime } from "../logic/format";
import { MegaphoneIcon } from "./Icons";

/**
 * The organiser's announcements, pinned above the conversation: the newest
 * in full, the others behind a toggle. Each goes at the time it carries.
 * Announced to screen readers as it appears (a polite live region).
 */
export function AnnouncementBanner({ announcements, now = Date.now }: { announcements: readonly AnnouncementView[]; now?: () => number }) {
  const [, setTick] = useState(0);
  const [expanded, setExpanded] = useState(false);
  const t = now();
  const shown = running(announcements, t);
  const end = nextEnd(announcements, t);
  // Re-render when the next one ends, so it goes without a reload.
  useEffect(() => {
    if (end === null) return;
    const id = setTimeout(() => setTick((n) => n + 1), Math.max(0, end - now()) + 50);
    return () => clearTimeout(id);
  }, [end, now]);
  const [first, ...rest] = shown;
  return (
    <div className="announcements" role="region" aria-label="Announcements from the organiser" aria-live="polite">
      {first && (
        <>
          <Announcement a={first} />
          {rest.length > 0 && (
            <button type="button" className="btn btn-sm btn-ghost announcements-more" aria-expanded={expanded} onClick={() => setExpanded((e) => !e)}>
              {expanded ? "Fewer announcements" : `${rest.length} more announcement${rest.length === 1 ? "" : "s"}`}
            </button>
          )}
          {expanded && rest.map((a) => <Announcement key={a.id} a={a} />)}
        </>
      )}
    </div>
  );
}

function Announcement({ a }: { a: AnnouncementView }) {
  return (
    <p className="announcement">
      <MegaphoneIcon width={16} height={16} />
      <span className="announcement-label">Organiser</span>
      <span className="announcement-text">{a.text}</span>
      <span className="announcement-until">until {clockTime(a.until)}</span>
    </p>
  );
}
