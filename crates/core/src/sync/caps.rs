//! Every map a peer can grow has a cap; here they are, each with the reason
//! for its number. A peer that pushes past one loses only its own
//! usefulness: its extra claims, wants or announcements are dropped and
//! counted, and everyone else's keep working.

/// Heads one link may claim, over all its rooms. A festival room of 50,000
/// authors fits; at ~140 bytes a claim (key, marks, tip id, map overhead)
/// a link at the cap costs ~9 MiB (`festival-bench attack`, invented
/// summaries: ten links at the cap, ~100 MiB peak for the victim).
pub const MAX_CLAIMS_PER_LINK: usize = 65_536;

/// Peers with counters of their own ([`super::Stats::peers`]). Linked peers
/// are few at a time (the power policy's limit, or a relay's sockets), but
/// over a weekend, or from a stream of fresh keys, there is no end to them:
/// beyond the cap, the counters of a peer without a live link are folded
/// into [`super::Stats::departed`], so the totals stay whole.
pub const MAX_PEER_COUNTERS: usize = 1_024;

/// Range requests in flight, over all links. Each names one (room, author);
/// at 256 seqs each this is a quarter of a million messages on their way,
/// more than any catch-up needs at once.
pub const MAX_WANTS: usize = 1_024;

/// Range requests in flight to one link: one slow or hostile peer cannot
/// hold more than this share of [`MAX_WANTS`]. Also the most requests a
/// peer may queue with us (see [`MAX_SERVE_QUEUE`]).
pub const MAX_WANTS_PER_LINK: usize = 64;

/// Chains we lack that a link claims but that could not be asked for yet,
/// because every link claiming them had its share of wants out (or all
/// wants were): asked for as soon as a want ends. As many as one link may
/// claim; beyond that they wait for the next sync, as before.
pub const MAX_BACKLOG: usize = MAX_CLAIMS_PER_LINK;

/// Announced messages waited for (IHave without a push yet). A few seconds
/// of live traffic in every room; more is a flood of invented references.
pub const MAX_MISSING: usize = 4_096;

/// Of [`MAX_MISSING`], entries first announced by one link.
pub const MAX_MISSING_PER_LINK: usize = 1_024;

/// Links remembered per announced message: enough to try a few in turn.
pub const MAX_ANNOUNCERS: usize = 4;
/// Asks a link left unanswered (nothing at all came from it between the ask
/// and the graft timeout; at most one strike a tick) after which it is no
/// longer asked first when it announces, for [`STRIKE_MEMORY_MS`] after
/// its last strike: one that announces fast and serves nothing would cost
/// every message a graft timeout at each of its neighbours. An answer to
/// an ask clears the count.
pub const ANNOUNCER_STRIKES: u32 = 3;
/// How long strikes are remembered after the last one.
pub const STRIKE_MEMORY_MS: u64 = 60_000;
/// Positions asked for at once while the awaited map was full, remembered
/// (for a graft timeout) so a second announcer is not asked as well.
pub const MAX_ASKED_UNREMEMBERED: usize = 1_024;
/// Messages of authors over their push budget announced lately, by id: a
/// graft for one is served behind the link's catch-up.
pub const MAX_HELD_BACK_IDS: usize = 4_096;

/// Loads (store reads) in flight for one link. Reads run beside the event
/// loop; four keep a link busy without letting it starve the others.
pub const MAX_LOADS_PER_LINK: usize = 4;

/// Requests a link may have queued with us, waiting for a load slot or
/// for its byte budget: what an honest asker can have in flight.
pub const MAX_SERVE_QUEUE: usize = MAX_WANTS_PER_LINK;

/// Bytes per second we serve one link, and the burst. A catch-up of a few
/// MiB (a day of a busy room) goes at once; a peer asking for everything
/// again and again gets 2 MiB/s and no more of our disk and CPU.
pub const SERVE_BYTES_PER_SEC: u32 = 2 * 1024 * 1024;
pub const SERVE_BYTES_BURST: u32 = 8 * 1024 * 1024;

/// Heads read per second to answer one link's reconciliation, and the
/// burst. Reading a head hashes it (~0.2 µs); an exchange in a room of
/// 100,000 authors with ten differences reads ~67,000 on each side (the
/// root's fingerprint and its children's are kept up to date; the next
/// level reads a sixteenth of the room per differing branch: a test in
/// `state.rs`), and a peer that has nothing gets the whole room in one
/// reading. A peer asking for splits again and again gets a few tens
/// of milliseconds of our CPU a second.
pub const RECON_READS_PER_SEC: u32 = 250_000;
pub const RECON_READS_BURST: u32 = 1_000_000;

/// Authors with a push budget of their own (`crowd`): ~100 bytes each, 1.6
/// MiB in all. Beyond it the least recently added is forgotten, and starts
/// again with a full budget if it comes back: above one link's burst of
/// new authors ([`NEW_AUTHORS_BURST`]), so one burst of fresh keys cannot
/// reset everyone's budget.
pub const MAX_PUSH_BUDGETS: usize = 16_384;
/// Photos whose header was pushed, remembered so their pieces are pushed
/// without spending their author's push budget (a piece comes within a
/// second of its header; a thousand photos is minutes of a busy festival
/// room): ~100 bytes each.
pub const MAX_PUSHED_PHOTOS: usize = 1_024;

/// Message references served for one Graft: a graft asks for what a push
/// missed, a handful of messages; 512 (the frame's limit) would be 512 reads.
pub const MAX_GRAFT_REFS_SERVED: usize = 64;

/// New authors (keys not yet known in a room) accepted from one link: the
/// per-second rate and the burst. A phone joining a room of 5,000 people
/// takes them at once; a stream of fresh keys gets 20 a second per link.
pub const NEW_AUTHORS_PER_SEC: u32 = 20;
pub const NEW_AUTHORS_BURST: u32 = 5_000;

/// Authors tracked per room (~120 bytes each in memory): ten times the
/// largest room a festival makes, and 12 MiB.
pub const MAX_AUTHORS_PER_ROOM: usize = 100_000;

/// Authors known to have equivocated. Proofs are gossiped once per author;
/// a peer with many keys can make them all equivocate, so the set is capped.
pub const MAX_EQUIVOCATORS: usize = 10_000;
/// People blocked at once: blocked by hand, one at a time, so far above what
/// anyone taps (the app's store holds as many choices).
pub const MAX_BLOCKED: usize = 10_000;

/// Refusals in one window that make a link misbehaving, and the window.
/// Only the peer's own faults count (malformed frames, bad signatures, rate
/// floods); an honest peer makes none. 100 in 10 s is no accident.
pub const MISBEHAVING_REFUSALS: u64 = 100;
pub const MISBEHAVING_WINDOW_MS: u64 = 10_000;

/// Refusals are reported (logged, shown) per link at most once a second,
/// as counts per reason: one bundle can hold 52,000 bad records.
pub const REFUSAL_REPORT_MS: u64 = 1_000;

/// Range requests a link may leave unanswered (timed out) before it is
/// asked only when no other peer claims what we need: a peer that claims
/// and never serves stops being anyone's first choice.
pub const STRIKES_TO_DEMOTE: u32 = 2;

/// Tip mismatches probed per summary frame (a `Want` for the one message a
/// peer holds at a position where we hold another), to find equivocation.
pub const MAX_TIP_PROBES: usize = 16;
