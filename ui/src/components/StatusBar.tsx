import type { Status } from "../model";
import { duration } from "../logic/format";
import { BatteryIcon, CloudIcon, PlugIcon, WifiIcon } from "./Icons";

export interface PowerSummary {
  battery: number | null;
  low: boolean;
  /** What the app holds back to save power, in words. */
  saving: string[];
}

export function powerSummary(s: Pick<Status, "power" | "limits">): PowerSummary {
  const battery = typeof s.power === "object" && s.power !== null && "Battery" in s.power ? s.power.Battery.percent : null;
  const saving: string[] = [];
  if (battery !== null) {
    saving.push(`max ${s.limits.max_peers} links`);
    saving.push(`sync every ${duration(s.limits.sync_interval_ms)}`);
    if (!s.limits.relay_for_others) saving.push("not relaying for others");
    if (!s.limits.background_sync) saving.push("no background sync");
  }
  return { battery, low: battery !== null && battery <= 20, saving };
}

export function StatusBar({ status, streamError }: { status: Status | null; streamError?: string | null }) {
  if (!status) {
    return (
      <footer className="statusbar" role="status">
        <span className="dot dot-off" /> Starting…
      </footer>
    );
  }
  const active = status.p2p ?? true;
  const power = powerSummary(status);
  const relay = status.relay ?? "off";
  return (
    <footer className="statusbar" role="status" aria-label="Network status">
      <span className="sb-item" title={active ? "Finding and linking to people on this network" : "Not linking: messages stay saved on this device"}>
        <span className={`dot ${active ? (status.links > 0 ? "dot-on" : "dot-wait") : "dot-off"}`} />
        {active ? "P2P active" : "P2P off"}
      </span>
      <span className="sb-item" title="Open data channels · devices found on the LAN">
        <WifiIcon width={14} height={14} /> {status.links} {status.links === 1 ? "link" : "links"} · {status.discovered} nearby
      </span>
      <span className={`sb-item relay-${relay.toLowerCase().replace(/[^a-z]/g, "")}`} title="Relay server">
        <CloudIcon width={14} height={14} /> Relay: {relay}
      </span>
      <span className={`sb-item sb-power${power.low ? " low" : ""}`} title={power.saving.length ? `Saving power: ${power.saving.join(", ")}` : "On mains power: full speed"}>
        {power.battery === null ? (
          <>
            <PlugIcon width={14} height={14} /> On power · full speed
          </>
        ) : (
          <>
            <BatteryIcon width={14} height={14} /> {power.battery}% · saving: {power.saving.join(", ")}
          </>
        )}
      </span>
      <span className="sb-item sb-right muted" title="Festival id">
        {status.festival}
      </span>
      {streamError && <span className="sb-item form-error">Live updates stopped: {streamError}</span>}
    </footer>
  );
}
