// Which conversation a message belongs to. Rooms are conversations by their
// id; the DM mailbox room ("dm") carries every direct message, and the UI
// splits it into one conversation per person.

export const DM_ROOM = "dm";
export const FESTIVAL_ROOM = "festival";

export type ConversationKey = string;

/** The bits of a message this needs; MessageView fits. */
export interface Routed {
  room: string;
  author: string;
  mine: boolean;
  body: { type: string; to?: string; group?: string };
}

export function groupKey(group: string): ConversationKey {
  return `group:${group}`;
}

/** The group a group key is, or undefined. */
export function groupOf(key: ConversationKey): string | undefined {
  return key.startsWith("group:") ? key.slice(6) : undefined;
}

export function dmKey(peer: string): ConversationKey {
  return `dm:${peer}`;
}

/** The person a DM key talks to, or undefined for a room key. */
export function dmPeer(key: ConversationKey): string | undefined {
  return key.startsWith("dm:") ? key.slice(3) : undefined;
}

export function conversationOf(m: Routed): ConversationKey {
  if (m.room !== DM_ROOM) return m.room;
  if (m.body.group !== undefined) return groupKey(m.body.group);
  const other = m.mine ? m.body.to : m.author;
  return dmKey(other ?? m.author);
}
