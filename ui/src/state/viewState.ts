// What the node says about one of our messages in a MessageView, as a Delivery.
import type { MessageView } from "../model";
import { SAVED, asPath, type Delivery } from "../logic/delivery";

export function deliveryFromView(m: Pick<MessageView, "state" | "path" | "waiting" | "delivered_to" | "read_by">): Delivery {
  const stage = m.state ?? "saved";
  const path = asPath(m.path);
  return {
    ...SAVED,
    stage,
    reported: stage,
    paths: path ? [path] : [],
    deliveredCount: m.delivered_to ?? 0,
    readCount: m.read_by ?? 0,
    waiting: stage === "saved" && m.waiting ? m.waiting : undefined,
  };
}
