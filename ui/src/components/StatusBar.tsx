import type { PathStats, PowerMode, RelayState, Saving, Status } from "../model";
import { AlertIcon, BatteryIcon, CloudIcon, PlugIcon, WifiIcon } from "./Icons";

/** What the node holds back to save power, in words. */
export function savingText(s: Saving): string {
  switch (s.kind) {
    case "fewer_links":
      return `max ${s.max} ${s.max === 1 ? "link" : "links"}`;
    case "slower_sync":
      return `sync every ${s.every_s < 60 ? `${s.every_s} s` : `${Math.round(s.every_s / 60)} min`}`;
    case "no_relay_for_others":
      return "not relaying for others";
    case "no_background_sync":
      return "no background sync";
    default:
      return String((s as { kind?: unknown }).kind ?? "").replace(/_/g, " ");
  }
}

export function powerText(p: PowerMode): string {
  if (p.battery === null) return "On power · full speed";
  const saving = p.saving.map(savingText);
  return `${p.battery}%${saving.length ? ` · saving: ${saving.join(", ")}` : ""}`;
}

/** How traffic travels, for the relay's tooltip: round trips and the share kept direct. */
export function pathsText(p: PathStats): string {
  const parts: string[] = [];
  if (p.relay_rtt_ms !== null) parts.push(`relay round trip ${Math.round(p.relay_rtt_ms)} ms`);
  if (p.lan_rtt_ms !== null) parts.push(`direct ${p.lan_rtt_ms < 1 ? "< 1" : Math.round(p.lan_rtt_ms)} ms`);
  if (p.off_relay_share !== null) parts.push(`${Math.round(p.off_relay_share * 100)}% of traffic direct`);
  if (p.upgrades > 0) parts.push(`${p.upgrades} moved off the relay`);
  return parts.join(" · ");
}

export function relayText(r: RelayState, paths?: PathStats): { label: string; title: string; tone: "on" | "wait" | "off" } {
  const detail = paths ? pathsText(paths) : "";
  const withDetail = (t: string) => (detail ? `${t} · ${detail}` : t);
  switch (r.state) {
    case "not_configured":
      return { label: "Relay: off", title: "No relay set: LAN only (Settings)", tone: "off" };
    case "connecting":
      return { label: "Relay: connecting", title: r.url, tone: "wait" };
    case "connected":
      return paths?.relay_slow
        ? { label: "Relay: slow", title: withDetail(`${r.url}: slow, looking for direct paths`), tone: "wait" }
        : { label: "Relay: connected", title: withDetail(r.url), tone: "on" };
    case "offline":
      return { label: "Relay: offline", title: `${r.url}: ${r.reason}`, tone: "off" };
    default:
      return { label: "Relay: ?", title: "", tone: "off" };
  }
}

/**
 * What peers sent that the node refused (bad signatures, oversized frames,
 * ...), since it started: nothing to do for the person, but a sign that a
 * device nearby misbehaves. `null` when nothing was refused.
 */
export function rejectedText(rejected: Readonly<Record<string, number>> | undefined): { label: string; title: string } | null {
  const entries = Object.entries(rejected ?? {}).filter(([, n]) => typeof n === "number" && n > 0);
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return null;
  const reasons = entries
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `${code.replace(/_/g, " ")}: ${n}`)
    .join(", ");
  return { label: `${total} refused`, title: `Refused from other devices since the app started (${reasons}). Nothing for you to do: what they sent was dropped.` };
}

export function StatusBar({ status, streamError }: { status: Status | null; streamError?: string | null }) {
  if (!status) {
    return (
      <footer className="statusbar" role="status">
        <span className="dot dot-off" /> Starting…
      </footer>
    );
  }
  const relay = relayText(status.relay, status.paths);
  const refused = rejectedText(status.rejected);
  const power = status.power;
  return (
    <footer className="statusbar" role="status" aria-label="Network status">
      <span className="sb-item" title={status.p2p ? "Finding and linking to people on this network" : "Not linking: messages stay saved on this device"}>
        <span className={`dot ${status.p2p ? (status.links > 0 ? "dot-on" : "dot-wait") : "dot-off"}`} />
        {status.p2p ? "P2P active" : "P2P off"}
      </span>
      <span className="sb-item" title="Open data channels · devices of this festival found on the LAN">
        <WifiIcon width={14} height={14} /> {status.links} {status.links === 1 ? "link" : "links"} · {status.discovered} nearby
      </span>
      <span className={`sb-item relay-${relay.tone}`} title={relay.title}>
        <CloudIcon width={14} height={14} /> {relay.label}
      </span>
      <span className={`sb-item sb-power${power.low ? " low" : ""}`} title={power.battery === null ? "On mains power: full speed" : "On battery: the app holds back to save power"}>
        {power.battery === null ? <PlugIcon width={14} height={14} /> : <BatteryIcon width={14} height={14} />} {powerText(power)}
      </span>
      {refused && (
        <span className="sb-item sb-refused muted" title={refused.title}>
          <AlertIcon width={14} height={14} /> {refused.label}
        </span>
      )}
      <span className="sb-item sb-right muted" title="Festival id">
        {status.festival}
      </span>
      {streamError && <span className="sb-item form-error">Live updates stopped: {streamError}</span>}
    </footer>
  );
}
