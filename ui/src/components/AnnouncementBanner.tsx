import { useEffect, useId, useState } from "react";
import type { AnnouncementView } from "../model";
import { nextEnd, running } from "../logic/announcements";
import { clockTime } from "../logic/format";
import { MegaphoneIcon } from "./Icons";

/**
 * The organiser's announcements, pinned above the conversation: the newest
 * in full, the others behind a toggle. Each goes at the time it carries.
 * The region is always there (empty when none runs), and the newest
 * announcement's text alone is a polite live region, so a screen reader
 * reads a new one out, not the toggle.
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
  const listId = useId();
  const [first, ...rest] = shown;
  return (
    <div className={`announcements${first ? "" : " none"}`} role="region" aria-label="Announcements from the organiser">
      <p className="sr-only" aria-live="polite">
        {first ? `Announcement from the organiser: ${first.text}` : ""}
      </p>
      {first && (
        <>
          <Announcement a={first} />
          {rest.length > 0 && (
            <button
              type="button"
              className="btn btn-sm btn-ghost announcements-more"
              aria-expanded={expanded}
              aria-controls={listId}
              onClick={() => setExpanded((e) => !e)}
            >
              {expanded ? "Fewer announcements" : `${rest.length} more announcement${rest.length === 1 ? "" : "s"}`}
            </button>
          )}
          <div id={listId} hidden={!expanded}>
            {expanded && rest.map((a) => <Announcement key={a.id} a={a} />)}
          </div>
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
