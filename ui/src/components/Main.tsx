import { useCallback, useEffect, useMemo, useState } from "react";
import { useApi } from "../ApiContext";
import type { Author, MessageView, Settings } from "../model";
import { DM_ROOM, dmKey, dmPeer, groupKey, groupOf, type ConversationKey } from "../logic/conversation";
import { loadDrafts, saveDrafts, setDraft, type Drafts } from "../logic/drafts";
import { totalUnread } from "../logic/unread";
import { authorOf, conversationMessages, deliveryOf, dmConversations, sortedRooms } from "../state/chat";
import { useChat } from "../state/useChat";
import { ChatView } from "./ChatView";
import { Dialog } from "./Dialog";
import { GroupForm } from "./GroupForm";
import { MentionContext, type MentionNames } from "./Mentions";
import { MyCodeCard } from "./MyCodeCard";
import { PeopleChoices } from "./PeopleChoices";
import { PeoplePanel } from "./PeoplePanel";
import { SettingsForm } from "./SettingsForm";
import { Sidebar } from "./Sidebar";
import { StatusBar } from "./StatusBar";
import { AlertIcon } from "./Icons";

const storage = typeof localStorage === "undefined" ? undefined : localStorage;

export interface MainProps {
  settings: Settings;
  /** Why the node could not start (AppState.error), if it could not. */
  nodeError: string | null;
  onSettings: (s: Settings) => void;
}

export function Main({ settings, nodeError, onSettings }: MainProps) {
  const api = useApi();
  const { state, actions, streamError } = useChat(api);
  const [drafts, setDrafts] = useState<Drafts>(() => loadDrafts(storage));
  const [peopleOpen, setPeopleOpen] = useState(false);
  const [dialog, setDialog] = useState<"settings" | "code" | "group" | "invite" | null>(null);
  // Narrow screens show either the list or the chat.
  const [showList, setShowList] = useState(false);

  useEffect(() => saveDrafts(storage, drafts), [drafts]);

  useEffect(() => {
    if (!peopleOpen || dialog) return;
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && setPeopleOpen(false);
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [peopleOpen, dialog]);

  const unreadTotal = totalUnread(state.unread);
  useEffect(() => {
    document.title = unreadTotal > 0 ? `(${unreadTotal}) Festival Chat` : "Festival Chat";
  }, [unreadTotal]);

  const key = state.open;
  const rooms = useMemo(() => sortedRooms(state), [state]);
  const dms = useMemo(() => dmConversations(state), [state]);
  const messages = useMemo(() => conversationMessages(state, key), [state, key]);
  const peers = useMemo(() => Object.values(state.peers), [state.peers]);
  const nearby = peers.filter((p) => p.linked || p.discovered).length;

  // Every name on screen comes from here: the people list, then what
  // messages said (the sender), each with its verified mark or fingerprint.
  const personOf = useCallback((peer: string, fallback?: Author) => authorOf(state, peer, fallback), [state]);
  const messageAuthor = useCallback((m: MessageView) => (m.mine ? undefined : authorOf(state, m.author, m.sender)), [state]);
  const delivery = useCallback((m: MessageView) => deliveryOf(state, m), [state]);

  // Names a message may mention, and mine: highlighted, completed after "@".
  const mentionNames = useMemo<MentionNames>(() => {
    const names = new Set<string>();
    for (const p of peers) if (p.name && !p.blocked) names.add(p.name);
    for (const [peer, a] of Object.entries(state.names)) if (a.name && !state.peers[peer]?.blocked && !state.choices[peer]?.blocked) names.add(a.name);
    return { names: [...names].sort((a, b) => a.localeCompare(b)), me: settings.name };
  }, [peers, state.names, state.peers, state.choices, settings.name]);
  const muted = useMemo(() => {
    const set = new Set<string>();
    for (const r of state.rooms) if (r.muted) set.add(r.id);
    for (const p of peers) if (p.muted) set.add(dmKey(p.peer));
    for (const [peer, c] of Object.entries(state.choices)) if (c.muted) set.add(dmKey(peer));
    for (const g of state.groups) if (g.muted) set.add(groupKey(g.id));
    return set;
  }, [state.rooms, peers, state.choices, state.groups]);

  const open = useCallback(
    (k: ConversationKey) => {
      actions.open(k);
      setShowList(false);
    },
    [actions],
  );
  const dmAuthor = useCallback(
    (p: string) => {
      actions.startDm(p);
      open(dmKey(p));
    },
    [actions, open],
  );

  const send = useCallback(
    async (text: string) => {
      await actions.send(key, text);
      // The node has it: drop the draft it came from, unless more was typed.
      setDrafts((d) => (d[key] === text ? setDraft(d, key, "") : d));
    },
    [actions, key],
  );

  const sendPhoto = useCallback(
    async (picture: Uint8Array, caption: string) => {
      await actions.sendPhoto(key, picture, caption);
      // The caption was the draft: drop it, unless more was typed.
      setDrafts((d) => (d[key] === caption ? setDraft(d, key, "") : d));
    },
    [actions, key],
  );

  const save = async (s: Settings) => {
    const next = await api.saveSettings(s);
    onSettings(next);
    actions.refresh();
    return next;
  };

  const peer = dmPeer(key);
  const peerView = peer !== undefined ? state.peers[peer] : undefined;
  const groupId = groupOf(key);
  const groupView = groupId !== undefined ? state.groups.find((g) => g.id === groupId) : undefined;
  // People to put in a group: those nearby, then those I have DMs with.
  const pickable = useMemo(() => {
    const seen = new Set<string>();
    const out: { peer: string; who: Author | undefined }[] = [];
    const me = state.status?.peer;
    const add = (peer: string) => {
      if (seen.has(peer) || peer === me || state.peers[peer]?.blocked || state.choices[peer]?.blocked) return;
      seen.add(peer);
      out.push({ peer, who: authorOf(state, peer) });
    };
    for (const p of peers) if (!p.blocked) add(p.peer);
    for (const d of dms) add(d.peer);
    return out;
  }, [peers, dms, state]);
  return (
    <MentionContext.Provider value={mentionNames}>
    <div className={`app${peopleOpen ? " with-people" : ""}${showList ? " show-list" : ""}`}>
      <Sidebar
        me={{ id: state.status?.peer ?? "me", name: settings.name, fingerprint: state.status?.fingerprint }}
        rooms={rooms}
        dms={dms}
        unread={state.unread.counts}
        open={key}
        nearby={nearby}
        personOf={personOf}
        onOpen={open}
        onJoin={async (name) => {
          const room = await actions.joinRoom(name);
          open(room.id);
        }}
        onPeople={() => setPeopleOpen(true)}
        onSettings={() => setDialog("settings")}
        onMyCode={() => setDialog("code")}
        muted={muted}
        groups={state.groups}
        onNewGroup={() => setDialog("group")}
        onJump={(k, id) => {
          actions.reveal(k, id);
          setShowList(false);
        }}
      />
      {/* One ChatView per conversation: scroll position and composer errors start fresh. */}
      <ChatView
        key={key}
        convKey={key}
        room={state.rooms.find((r) => r.id === key)}
        peer={peerView}
        messages={messages}
        timeline={state.timelines[key]}
        authorOf={messageAuthor}
        personOf={personOf}
        deliveryOf={delivery}
        draft={drafts[key] ?? ""}
        onDraft={(t) => setDrafts((d) => setDraft(d, key, t))}
        onSend={send}
        onLoadOlder={() => actions.loadOlder(key)}
        onBack={() => setShowList(true)}
        onPeople={() => setPeopleOpen((o) => !o)}
        onAuthor={dmAuthor}
        nearby={nearby}
        announcements={state.announcements}
        focusId={state.focus?.key === key ? state.focus.id : undefined}
        muted={muted.has(key)}
        onMute={key !== DM_ROOM ? (on) => actions.mute(key, on) : undefined}
        blocked={peerView?.blocked ?? (peer !== undefined && (state.choices[peer]?.blocked ?? false))}
        onBlock={peer !== undefined ? (on) => actions.block(peer, on) : undefined}
        onMeetup={peer === undefined && groupId === undefined && key !== DM_ROOM ? (place, at) => actions.sendMeetup(key, place, at) : undefined}
        onPhoto={peer === undefined && groupId === undefined && key !== DM_ROOM ? sendPhoto : undefined}
        group={groupView}
        onInvite={groupView ? () => setDialog("invite") : undefined}
        onLeave={groupView ? () => actions.leaveGroup(groupView.id) : undefined}
        onAnswer={actions.answerMeetup}
        onRetry={actions.retry}
      />
      {peopleOpen && (
        <PeoplePanel
          peers={peers}
          onClose={() => setPeopleOpen(false)}
          onVerify={actions.verify}
          onMessage={(p) => {
            actions.startDm(p);
            open(dmKey(p));
            setPeopleOpen(false);
          }}
        />
      )}
      {nodeError && (
        <div className="node-error" role="alert">
          <AlertIcon width={16} height={16} />
          <span>
            The network part is not running: {nodeError}. Messages you write are kept and go out once it runs.
          </span>
          <button type="button" className="btn btn-sm btn-ghost" onClick={() => setDialog("settings")}>
            Settings
          </button>
        </div>
      )}
      <StatusBar status={state.status} streamError={streamError} />
      {dialog === "settings" && (
        <Dialog title="Settings" onClose={() => setDialog(null)}>
          <SettingsForm settings={settings} onSave={save} />
          <PeopleChoices onMute={actions.mute} onBlock={actions.block} />
        </Dialog>
      )}
      {dialog === "group" && (
        <Dialog title="New private group" onClose={() => setDialog(null)}>
          <GroupForm
            people={pickable}
            withName
            max={31}
            submitLabel="Make the group"
            onSubmit={async (name, members) => {
              const g = await actions.createGroup(name, members);
              setDialog(null);
              open(groupKey(g.id));
            }}
          />
        </Dialog>
      )}
      {dialog === "invite" && groupView && (
        <Dialog title={`Add people to ${groupView.name}`} onClose={() => setDialog(null)}>
          <GroupForm
            people={pickable.filter((x) => !groupView.members.some((m) => m.peer === x.peer))}
            withName={false}
            max={32 - groupView.members.length}
            submitLabel="Add them"
            onSubmit={async (_, members) => {
              await actions.inviteToGroup(groupView.id, members);
              setDialog(null);
            }}
          />
        </Dialog>
      )}
      {dialog === "code" && (
        <Dialog title="My code" onClose={() => setDialog(null)}>
          <MyCodeCard />
        </Dialog>
      )}
    </div>
    </MentionContext.Provider>
  );
}
