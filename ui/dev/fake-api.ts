// DEV ONLY: a pretend node for the screenshot harness (dev/screens.html).
// Never imported by the product (index.html -> src/main.tsx) or by tests.
// Scenes are picked with ?scene=...; everything stays in this page.

import { ApiError, type Api } from "../src/api";
import type { Author, Delivery, GroupView, HistoryCursor, HistoryPage, MessageView, NodeEvent, PeerView, RoomView, Settings, Status } from "../src/model";
import { bodyText } from "../src/logic/meetup";

const hex = (seed: number) => Array.from({ length: 64 }, (_, i) => ((seed * 7919 + i * 104729) % 16).toString(16)).join("");
const ME = hex(1);
const ANA = hex(2);
const BO = hex(3);
const CY = hex(5);
const DEE = hex(7);
const EZ = hex(11);
/** Not Ana: her name with a Cyrillic "А", flagged by the node as a lookalike. */
const FAKE_ANA = hex(13);

const now = Date.now();
const min = 60_000;


const trust = { name_clash: false, equivocated: false, muted: false, blocked: false };
// Ana and Cyrus were verified in person; "Аna Souza" borrows Ana's name (a
// Cyrillic А) and is flagged; Dee's device is caught signing two different
// messages for one place a moment after start (an `equivocation` event).
const peerList: PeerView[] = [
  { peer: ANA, fingerprint: "3F2A-91C4-7B0E-55D1", name: "Ana Souza", verified: true, ...trust, linked: true, discovered: true, path: "lan", last_seen: now - 5_000 },
  { peer: BO, fingerprint: "A1B2-C3D4-E5F6-0718", name: "Bo", verified: false, ...trust, linked: true, discovered: false, path: "relay", last_seen: now - 40_000 },
  { peer: CY, fingerprint: "77E0-12AB-9C3D-4F5E", name: "Cyrus K", verified: true, ...trust, linked: false, discovered: false, path: "via_others", last_seen: now - 14 * min },
  { peer: DEE, fingerprint: "0C1D-2E3F-4A5B-6C7D", name: "Dee", verified: false, ...trust, linked: false, discovered: true, path: "via_others", last_seen: now - 2 * min },
  { peer: EZ, fingerprint: "9999-AAAA-1234-FEDC", name: null, verified: false, ...trust, linked: false, discovered: false, path: "via_others", last_seen: now - 3 * 3_600_000 },
  { peer: FAKE_ANA, fingerprint: "9C1D-04E7-B2A8-61F3", name: "\u0410na Souza", verified: false, name_clash: true, equivocated: false, muted: false, blocked: false, linked: true, discovered: true, path: "lan", last_seen: now - 20_000 },
];

const ME_FINGERPRINT = "5E6F-7A8B-9C0D-1E2F";

/** A message's `sender` as the node builds it (names.rs): ourselves are verified and nameless. */
function senderOf(author: string): Author {
  if (author === ME) return { name: null, short_fingerprint: ME_FINGERPRINT.slice(0, 4), verified: true, name_clash: false, equivocated: false };
  const p = peerList.find((x) => x.peer === author);
  if (!p) return { name: null, short_fingerprint: author.slice(0, 4).toUpperCase(), verified: false, name_clash: false, equivocated: false };
  return { name: p.name, short_fingerprint: p.fingerprint.slice(0, 4), verified: p.verified, name_clash: p.name_clash, equivocated: p.equivocated };
}

function mkGroup(id: string, name: string, peers: readonly string[]): GroupView {
  const uniq = [...new Set(peers)];
  return { id, name, left: false, muted: false, last_activity: Date.now(), members: uniq.map((p) => ({ peer: p, me: p === ME, who: senderOf(p) })) };
}

function dl(over: Partial<Delivery>): Delivery {
  return { state: "saved", path: null, at_relay: false, delivered_to: 0, read_by: 0, waiting: null, not_delivered: null, overdue_at: null, as_of: Date.now(), ...over };
}

let seqs: Record<string, number> = {};
let counter = 0;
function mk(room: string, author: string, text: string, at: number, extra: Partial<MessageView> = {}): MessageView {
  seqs[author] = (seqs[author] ?? 0) + 1;
  counter += 1;
  const mine = author === ME;
  return {
    id: `${counter.toString(16).padStart(8, "0")}${hex(counter).slice(8)}`,
    room,
    author,
    sender: senderOf(author),
    seq: seqs[author]!,
    created_at: at,
    received_at: at + 200,
    body: room === "dm" ? { type: "direct", to: ME, text } : { type: "text", text },
    hops: mine ? 0 : 1,
    mine,
    delivery: mine ? dl({ state: "read", path: "lan", delivered_to: 1, read_by: 1 }) : null,
    ...extra,
  } as MessageView;
}

const chatter = [
  "Anyone at the main stage already?",
  "Queue at the east gate is huge, go via north",
  "Water refill point behind the food trucks 💧",
  "Lost a black hoodie near camp B, anyone?",
  "Headliner moved to 22:30!",
  "Meet at the big flag after the set",
  "Phones have no signal here at all lol",
  "This app is the only thing that works",
  "Sunset from the hill is unreal",
  "Who has a spare charger cable (USB-C)?",
];
const people = [ANA, BO, CY, DEE, EZ];

function festivalHistory(): MessageView[] {
  const out: MessageView[] = [];
  const start = now - 26 * 60 * min;
  for (let i = 0; i < 110; i++) {
    const author = people[i % people.length]!;
    out.push(mk("festival", author, chatter[i % chatter.length]!, start + i * 13 * min));
  }
  const t = now - 30 * min;
  out.push(mk("festival", ANA, "Is everyone coming to the Main Stage tonight? 🎶", t));
  out.push(mk("festival", BO, "Yes! Meeting at the big yellow flag, left of the sound desk.", t + 2 * min, { hops: 3 }));
  out.push(mk("festival", ME, "On my way, 10 minutes", t + 4 * min, { delivery: dl({ state: "read", delivered_to: 4, read_by: 3 }) }));
  out.push(mk("festival", ME, "Grabbing water first", t + 4.5 * min, { delivery: dl({ state: "delivered", delivered_to: 2, read_by: 0 }) }));
  out.push(mk("festival", CY, "Bring sunscreen, it's brutal out here ☀️", t + 9 * min));
  out.push(mk("festival", DEE, "Signal is gone completely near the stage. Good thing this works over the Wi-Fi.", t + 12 * min));
  out.push(mk("festival", FAKE_ANA, "Ana here, new phone 🙈 my old one died. Send me your codes again?", t + 15 * min));
  out.push(mk("festival", ME, "Does anyone have a spare phone charger? Mine is at 18%", t + 20 * min, { delivery: dl({ state: "sent", delivered_to: 0, read_by: 0 }) }));
  out.push(mk("festival", ME, "Found one, thanks Ana!", t + 27 * min, { delivery: dl({ state: "saved", path: null, waiting: "no_one_nearby", delivered_to: 0, read_by: 0 }) }));
  return out;
}

function dmHistory(): MessageView[] {
  const t = now - 50 * min;
  const to = (peer: string, text: string) => ({ body: { type: "direct" as const, to: peer, text } });
  return [
    mk("dm", ANA, "Hey! Are you near the food trucks?", t),
    mk("dm", ME, "Yes, by the taco stand", t + min, { ...to(ANA, "Yes, by the taco stand"), delivery: dl({ state: "read" }) }),
    mk("dm", ANA, "Coming over 🌮", t + 3 * min),
    mk("dm", ME, "See you in 5", t + 4 * min, { ...to(ANA, "See you in 5"), delivery: dl({ state: "delivered", read_by: 0 }) }),
    mk("dm", BO, "Did you see the schedule change?", t + 20 * min),
    mk("dm", ME, "Headliner at 22:30, right?", t + 22 * min, { ...to(BO, "Headliner at 22:30, right?"), delivery: dl({ state: "at_relay", path: "relay", at_relay: true, not_delivered: "at_relay" }) }),
    mk("dm", FAKE_ANA, "It's Ana! Lost my wallet, can you bring cash to the east gate? 🙏", t + 40 * min),
  ];
}


function fakeQr(): string {
  // A QR-looking pattern; the real one is rendered by the node.
  const n = 29;
  let rects = "";
  const finder = (x: number, y: number) =>
    `<path d="M${x} ${y}h7v7h-7zM${x + 1} ${y + 1}v5h5v-5z" fill-rule="evenodd"/><path d="M${x + 2} ${y + 2}h3v3h-3z"/>`;
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) {
      const inFinder = (x < 8 && y < 8) || (x > n - 9 && y < 8) || (x < 8 && y > n - 9);
      if (!inFinder && (x * 31 + y * 17 + x * y * 7) % 5 < 2) rects += `M${x} ${y}h1v1h-1z`;
    }
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="-1 -1 ${n + 2} ${n + 2}"><path d="${rects}"/>${finder(0, 0)}${finder(n - 7, 0)}${finder(0, n - 7)}</svg>`;
}

function pageOf(all: MessageView[], before: HistoryCursor | null, limit: number): HistoryPage {
  const end = before ? all.findIndex((m) => m.author === before.author && m.seq === before.seq) : all.length;
  const startIdx = Math.max(0, end - limit);
  const first = all[startIdx];
  return { messages: all.slice(startIdx, end), next: startIdx > 0 && first ? { created_at: first.created_at, author: first.author, seq: first.seq } : null };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A photo drawn on a canvas (a sunset over a stage): its JPEG bytes and a
 * small thumbnail's data URL, as the node would make them. Browser only.
 */
function drawPhoto(w: number, h: number): { jpeg: Promise<ArrayBuffer>; thumb: string } {
  const paint = (cw: number, ch: number) => {
    const c = document.createElement("canvas");
    c.width = cw;
    c.height = ch;
    const g = c.getContext("2d")!;
    const sky = g.createLinearGradient(0, 0, 0, ch);
    sky.addColorStop(0, "#2b1055");
    sky.addColorStop(0.55, "#d53369");
    sky.addColorStop(1, "#ffb347");
    g.fillStyle = sky;
    g.fillRect(0, 0, cw, ch);
    g.fillStyle = "#ffe29a";
    g.beginPath();
    g.arc(cw * 0.68, ch * 0.62, ch * 0.13, 0, Math.PI * 2);
    g.fill();
    g.fillStyle = "#14082a";
    g.fillRect(0, ch * 0.72, cw, ch * 0.28);
    g.fillRect(cw * 0.18, ch * 0.5, cw * 0.34, ch * 0.24);
    for (let i = 0; i < 40; i++) {
      g.beginPath();
      g.arc((i * 97) % cw, ch * 0.8 + ((i * 37) % (ch * 0.2)), ch * 0.03, 0, Math.PI * 2);
      g.fill();
    }
    return c;
  };
  const jpeg = new Promise<ArrayBuffer>((done) => paint(w, h).toBlob((b) => void b!.arrayBuffer().then(done), "image/jpeg", 0.85));
  return { jpeg, thumb: paint(Math.round((200 * w) / Math.max(w, h)), Math.round((200 * h) / Math.max(w, h))).toDataURL("image/jpeg", 0.6) };
}

export function fakeApi(scene: string): Api {
  seqs = {};
  counter = 0;
  const festival = festivalHistory();
  const dms = dmHistory();
  const stage = [
    mk("main-stage", CY, "Sound check done, doors in 20", now - 70 * min),
    mk("main-stage", ANA, "Front left is the place to be", now - 40 * min),
    mk("main-stage", DEE, "Crowd is already massive", now - 12 * min),
    mk("main-stage", ANA, "", now - 8 * min, {
      body: {
        type: "meetup",
        place: "the big wheel, left of the main stage",
        at: now + 40 * min,
        until: now + 70 * min,
        coming: 3,
        cant: 1,
        mine: null,
        people: [
          { peer: ANA, me: false, who: senderOf(ANA), answer: "coming" },
          { peer: CY, me: false, who: senderOf(CY), answer: "coming" },
          { peer: DEE, me: false, who: senderOf(DEE), answer: "coming" },
          { peer: BO, me: false, who: senderOf(BO), answer: "cant" },
        ],
      },
    }),
  ];
  const photos = new Map<string, Promise<ArrayBuffer>>();
  if (typeof document !== "undefined") {
    const shot = drawPhoto(1600, 1067);
    const m = mk("main-stage", DEE, "", now - 5 * min, {
      body: { type: "photo", caption: "Sunset from the hill, the stage lights are on 🌅", width: 1600, height: 1067, bytes: 162_000, thumb: shot.thumb, complete: scene !== "photo-coming" },
    });
    photos.set(m.id, shot.jpeg);
    stage.push(m);
  }
  const byRoom: Record<string, MessageView[]> = { festival, dm: dms, "main-stage": stage, "camp-b12": [mk("camp-b12", BO, "Kettle is on at camp 🫖", now - 90 * min)] };
  const muted = new Set<string>();
  const blocked = new Set<string>();
  const crew = mkGroup("c0ffee".padEnd(32, "0"), "Camp crew", [ME, ANA, BO, CY]);
  const groups: GroupView[] = [crew];
  byRoom[`group:${crew.id}`] = [
    mk("dm", ANA, "", now - 80 * min, { body: { type: "group_members", group: crew.id, name: "Camp crew", members: [ME, ANA, BO, CY] } }),
    mk("dm", ANA, "Tent is up, bring the lamp 🔦", now - 60 * min, { body: { type: "group", group: crew.id, name: "Camp crew", text: "Tent is up, bring the lamp 🔦" } }),
    mk("dm", BO, "On it. Anyone need water?", now - 55 * min, { body: { type: "group", group: crew.id, name: "Camp crew", text: "On it. Anyone need water?" } }),
    mk("dm", ME, "Me! Two bottles please", now - 50 * min, {
      body: { type: "group", group: crew.id, name: "Camp crew", text: "Me! Two bottles please" },
      delivery: dl({ state: "read", path: "lan", delivered_to: 3, read_by: 2 }),
    }),
  ];
  let rooms: RoomView[] = [
    { id: "festival", name: "festival", unread: 0, last_activity: now - 3 * min, joined_at: now - 30 * 3_600_000, muted: false },
    { id: "main-stage", name: "Main Stage", unread: 3, last_activity: now - 12 * min, joined_at: now - 5 * 3_600_000, muted: false },
    { id: "camp-b12", name: "Camp B12", unread: 1, last_activity: now - 90 * min, joined_at: now - 20 * 3_600_000, muted: false },
  ];
  let settings: Settings = {
    name: "Mia",
    festival: "glasto26",
    relay_url: "wss://relay.glasto26.example",
    relay_id: null,
    organiser: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    peer_limit: null,
    interfaces: ["wlan0"],
    storage_mb: null,
    message_lifetime_hours: 120,
  };
  const battery = scene === "mobile" ? 18 : 42;
  const low = battery <= 20;
  const status: Status = {
    peer: ME,
    fingerprint: ME_FINGERPRINT,
    name: "Mia",
    festival: "glasto26",
    p2p: true,
    links: 2,
    discovered: 3,
    relay: { state: "connected", url: "wss://relay.glasto26.example" },
    power: {
      battery,
      low,
      limits: low
        ? { max_peers: 3, sync_interval_ms: 30_000, relay_for_others: false, background_sync: false, keepalive_ms: 10_000 }
        : { max_peers: 4, sync_interval_ms: 15_000, relay_for_others: true, background_sync: true, keepalive_ms: 5_000 },
      saving: low
        ? [{ kind: "fewer_links", max: 3 }, { kind: "slower_sync", every_s: 30 }, { kind: "no_relay_for_others" }, { kind: "no_background_sync" }]
        : [{ kind: "fewer_links", max: 4 }, { kind: "slower_sync", every_s: 15 }],
    },
    peer_limit: 4,
    signaling_port: 7071,
    udp_port: 7072,
    rejected: {},
    blocked_dropped: 0,
    paths: {
      sent_lan: 41,
      sent_relay: 6,
      bytes_lan: 182_000,
      bytes_relay: 31_000,
      off_relay_share: 0.85,
      p2p_attempts: 5,
      p2p_opened: 4,
      p2p_success_rate: 0.8,
      upgrade_attempts: 1,
      upgrades: 1,
      lan_rtt_ms: 3.2,
      relay_rtt_ms: 84,
      relay_slow: false,
      reflexive_addr: "203.0.113.7:51820",
    },
  };
  let emit: (e: NodeEvent) => void = () => {};

  const api: Api = {
    async appState() {
      const onboarded = !scene.startsWith("onboarding");
      return {
        onboarded,
        status: onboarded ? status : null,
        settings: onboarded ? settings : { ...settings, name: "" },
        error: scene === "node-down" ? { code: "network", message: "cannot bind the signaling port: address in use" } : null,
      };
    },
    async onboard(name) {
      await sleep(150);
      settings = { ...settings, name };
      return status;
    },
    async myCode() {
      return { peer: ME, name: settings.name, code: `festival:${ME}`, fingerprint: status.fingerprint, qr_svg: fakeQr() };
    },
    async rooms() {
      return rooms;
    },
    async joinRoom(name) {
      const id = name.trim().toLowerCase().replace(/\s+/g, "-");
      const r = { id, name: name.trim(), unread: 0, last_activity: null, joined_at: Date.now(), muted: false };
      rooms.push(r);
      byRoom[id] = [];
      return r;
    },
    async history(room, before, limit) {
      await sleep(120);
      return pageOf(byRoom[room] ?? [], before, limit);
    },
    async dmHistory(peer, before, limit) {
      await sleep(120);
      const mine = (byRoom["dm"] ?? []).filter((m) => (m.mine ? m.body.type === "direct" && m.body.to === peer : m.author === peer));
      return pageOf(mine, before, limit);
    },
    async send(room, text) {
      if (scene === "send-fails") throw new ApiError("storage", "the message store is busy; try again");
      const m = mk(room, ME, text, Date.now(), { delivery: dl({ state: "saved", path: null, waiting: "connecting", delivered_to: 0, read_by: 0 }) });
      setTimeout(() => emit({ event: "delivery", id: m.id, delivery: dl({ state: "sent", path: "lan" }) }), 900);
      setTimeout(() => emit({ event: "delivery", id: m.id, delivery: dl({ state: "delivered", path: "lan", delivered_to: 1 }) }), 1800);
      return m;
    },
    async sendMeetup(room, place, at) {
      if (!place.trim()) throw new ApiError("invalid_place", "a meet-up needs a place");
      const card = { type: "meetup" as const, place, at, until: at + 30 * min, coming: 0, cant: 0, mine: null, people: [] };
      const m = mk(room, ME, place, Date.now(), { delivery: dl({ state: "saved", path: null, waiting: "connecting", delivered_to: 0, read_by: 0 }), body: card });
      (byRoom[room] ??= []).push(m);
      return m;
    },
    async sendPhoto(room, picture, caption) {
      if (picture.length < 4) throw new ApiError("not_a_photo", "That file cannot be sent as a photo: the file is not a picture.");
      const url = URL.createObjectURL(new Blob([picture as BlobPart]));
      const size = await new Promise<{ w: number; h: number }>((done) => {
        const img = new Image();
        img.onload = () => done({ w: img.naturalWidth, h: img.naturalHeight });
        img.onerror = () => done({ w: 0, h: 0 });
        img.src = url;
      });
      if (size.w === 0) throw new ApiError("not_a_photo", "That file cannot be sent as a photo: the file is not a picture.");
      const scale = Math.min(1, 1600 / Math.max(size.w, size.h));
      const shot = drawPhoto(Math.round(size.w * scale), Math.round(size.h * scale));
      const body = { type: "photo" as const, caption: caption.trim(), width: Math.round(size.w * scale), height: Math.round(size.h * scale), bytes: picture.length, thumb: shot.thumb, complete: true };
      const m = mk(room, ME, "", Date.now(), { delivery: dl({ state: "saved", path: null, waiting: "connecting", delivered_to: 0, read_by: 0 }), body });
      photos.set(m.id, Promise.resolve(picture.slice().buffer as ArrayBuffer));
      (byRoom[room] ??= []).push(m);
      return m;
    },
    async photo(id) {
      const p = photos.get(id);
      if (!p) throw new ApiError("no_such_photo", "no photo with that id is stored here");
      return p;
    },
    async answerMeetup(meetup, answer) {
      const all = Object.values(byRoom).flat();
      const m = all.find((x) => x.id === meetup);
      if (!m || m.body.type !== "meetup") throw new ApiError("no_such_meetup", "no meet-up with that id is stored here");
      const others = m.body.people.filter((p) => !p.me);
      const mePerson = { peer: ME, me: true, who: senderOf(ME), answer };
      const people = [mePerson, ...others];
      const body = { ...m.body, people, mine: answer, coming: people.filter((p) => p.answer === "coming").length, cant: people.filter((p) => p.answer === "cant").length };
      const next = { ...m, body };
      for (const list of Object.values(byRoom)) {
        const i = list.findIndex((x) => x.id === meetup);
        if (i >= 0) list[i] = next;
      }
      return next;
    },
    async createGroup(name, members) {
      if (!name.trim()) throw new ApiError("invalid_group_name", "a group name is 1 to 64 bytes, one line");
      const g = mkGroup(hex(900 + groups.length).slice(0, 32), name, [ME, ...members]);
      groups.unshift(g);
      byRoom[`group:${g.id}`] = [mk("dm", ME, "", Date.now(), { body: { type: "group_members", group: g.id, name, members: [ME, ...members] } })];
      return g;
    },
    async groups() {
      return groups;
    },
    async sendGroup(group, text) {
      const g = groups.find((x) => x.id === group);
      if (!g || g.left) throw new ApiError("not_in_group", "you are not in that group (or you left it)");
      const m = mk("dm", ME, text, Date.now(), { body: { type: "group", group, name: g.name, text }, delivery: dl({ state: "sent", path: "lan" }) });
      (byRoom[`group:${group}`] ??= []).push(m);
      return m;
    },
    async inviteToGroup(group, members) {
      const i = groups.findIndex((x) => x.id === group);
      if (i < 0) throw new ApiError("not_in_group", "you are not in that group (or you left it)");
      const g = mkGroup(group, groups[i]!.name, [...groups[i]!.members.map((m) => m.peer), ...members]);
      groups[i] = g;
      return g;
    },
    async leaveGroup(group) {
      const i = groups.findIndex((x) => x.id === group);
      if (i < 0) throw new ApiError("not_in_group", "you are not in that group (or you left it)");
      groups[i] = { ...groups[i]!, left: true };
      return groups[i]!;
    },
    async groupHistory(group, before, limit) {
      await sleep(80);
      return pageOf(byRoom[`group:${group}`] ?? [], before, limit);
    },
    async retry(id) {
      const all = Object.values(byRoom).flat();
      const m = all.find((x) => x.id === id && x.mine);
      if (!m) throw new ApiError("not_your_message", "that is not one of your messages stored here");
      const next = { ...m, delivery: dl({ state: "sent", path: "lan", overdue_at: Date.now() + 120_000 }) };
      for (const list of Object.values(byRoom)) {
        const i = list.findIndex((x) => x.id === id);
        if (i >= 0) list[i] = next;
      }
      return next;
    },
    async sendDm(to, text) {
      const m = mk("dm", ME, text, Date.now(), { delivery: dl({ state: "saved", path: null, waiting: "connecting", delivered_to: 0, read_by: 0 }), body: { type: "direct", to, text } });
      return m;
    },
    async markRead() {},
    async announcements() {
      return [{ id: "f".repeat(64), text: "The east gate closes at 23:00 tonight: leave by the north gate after that.", created_at: now - 20 * min, until: now + 3 * 60 * min }];
    },
    async peers() {
      return peerList.map((p) => ({ ...p, muted: muted.has(`dm:${p.peer}`), blocked: blocked.has(p.peer) }));
    },
    async mute(conversation, on) {
      if (on) muted.add(conversation);
      else muted.delete(conversation);
      for (let i = 0; i < groups.length; i++) if (`group:${groups[i]!.id}` === conversation) groups[i] = { ...groups[i]!, muted: on };
      rooms = rooms.map((r) => (r.id === conversation ? { ...r, muted: on } : r));
    },
    async block(peer, on) {
      if (on) blocked.add(peer);
      else blocked.delete(peer);
    },
    async peopleChoices() {
      const ids = new Set([...blocked, ...[...muted].filter((c) => c.startsWith("dm:")).map((c) => c.slice(3))]);
      return [...ids].map((peer) => {
        const p = peerList.find((x) => x.peer === peer);
        return {
          peer,
          sender: { name: p?.name ?? null, short_fingerprint: p?.fingerprint.slice(0, 4) ?? "0000", verified: p?.verified ?? false, name_clash: false, equivocated: false },
          muted: muted.has(`dm:${peer}`),
          blocked: blocked.has(peer),
          since: Date.now(),
        };
      });
    },
    async viewing() {},
    async search(query, limit) {
      await sleep(80);
      const words = query.toLowerCase().split(/\s+/).filter(Boolean);
      const all = Object.values(byRoom).flat();
      const hits = all.filter((m) => words.every((w) => bodyText(m.body).toLowerCase().split(/[^\p{L}\p{N}]+/u).some((t) => t.startsWith(w))));
      return { messages: hits.sort((a, b) => b.created_at - a.created_at).slice(0, limit), pending: 0 };
    },
    async verify(code) {
      await sleep(100);
      if (!code.includes(DEE)) throw new ApiError("invalid_code", "that is not a contact code: festival: followed by 64 hex digits");
      return { ...peerList[3]!, verified: true };
    },
    async status() {
      return status;
    },
    async settings() {
      return settings;
    },
    async saveSettings(s) {
      await sleep(100);
      if (!/^[a-z0-9._-]{1,32}$/.test(s.festival)) throw new ApiError("invalid_festival", `invalid festival id "${s.festival}"`);
      if (s.storage_mb !== null && !(s.storage_mb >= 64 && s.storage_mb <= 65_536)) throw new ApiError("invalid_storage", "Storage must be 64 to 65536 MiB.");
      if (s.message_lifetime_hours !== null && !(s.message_lifetime_hours >= 1 && s.message_lifetime_hours <= 8784))
        throw new ApiError("invalid_storage", "Messages must be kept 1 to 8784 hours.");
      settings = s;
      return s;
    },
    async subscribe(onEvent) {
      emit = onEvent;
      // Dee's device is caught signing two messages for one place: the mark follows the event.
      setTimeout(() => {
        const dee = peerList.findIndex((p) => p.peer === DEE);
        peerList[dee] = { ...peerList[dee]!, equivocated: true };
        onEvent({ event: "equivocation", peer: DEE });
      }, 300);
      if (scene === "chat") {
        setTimeout(() => onEvent({ event: "message", ...mk("festival", EZ, "Fireworks at midnight by the lake 🎆", Date.now(), { hops: 2 }) }), 400);
        setTimeout(() => onEvent({ event: "message", ...mk("main-stage", ANA, "They just opened the gates!", Date.now()) }), 500);
      }
    },
  };
  return api;
}
