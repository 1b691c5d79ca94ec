// What the node says about one of our messages in a MessageView (`state`,
// `waiting`), turned into a Delivery. Accepts the shapes serde can give an
// enum with a path: "saved", "sent_lan", { sent: { path } }, { sent: "lan" },
// { type: "sent", path }.

import { SAVED, asPath, type Delivery, type Stage } from "../logic/delivery";

const STAGES: readonly Stage[] = ["saved", "sent", "delivered", "read"];

function stageOf(s: string): { stage: Stage; path?: string } | undefined {
  const l = s.toLowerCase();
  if ((STAGES as readonly string[]).includes(l)) return { stage: l as Stage };
  const m = /^sent[_ -]?(lan|relay)$/.exec(l);
  if (m) return { stage: "sent", path: m[1]! };
  return undefined;
}

function parse(state: unknown): { stage: Stage; path?: string } | undefined {
  if (typeof state === "string") return stageOf(state);
  if (typeof state !== "object" || state === null) return undefined;
  const o = state as Record<string, unknown>;
  const tag = o["type"] ?? o["state"] ?? o["stage"];
  if (typeof tag === "string") {
    const base = stageOf(tag);
    const path = typeof o["path"] === "string" ? o["path"] : base?.path;
    return base ? { stage: base.stage, ...(path ? { path } : {}) } : undefined;
  }
  const keys = Object.keys(o);
  if (keys.length === 1) {
    const k = keys[0]!;
    const base = stageOf(k);
    if (!base) return undefined;
    const v = o[k];
    const path =
      typeof v === "string" ? v : typeof v === "object" && v !== null && typeof (v as { path?: unknown }).path === "string" ? (v as { path: string }).path : base.path;
    return { stage: base.stage, ...(path ? { path } : {}) };
  }
  return undefined;
}

export function deliveryFromView(state: unknown, waiting: unknown): Delivery {
  const p = parse(state) ?? { stage: "saved" as Stage };
  const path = p.path ? asPath(p.path) : undefined;
  return {
    ...SAVED,
    stage: p.stage,
    paths: path ? [path] : [],
    waiting: p.stage === "saved" && typeof waiting === "string" && waiting !== "" ? waiting : undefined,
  };
}
