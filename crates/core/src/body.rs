//! Typed bodies for each envelope kind, and sealing of direct messages.
//!
//! A DM (and the receipt for one) is sealed with crypto_box (X25519 +
//! XChaCha20-Poly1305, RustCrypto) from the author's static key to the
//! recipient's, both derived from their Ed25519 identities. The box key is
//! the same both ways (Alice-to-Bob and Bob-to-Alice share it), so the
//! plaintext names its sender and recipient and the opener checks both
//! against the envelope: Bob cannot re-post Alice's ciphertext back to her
//! as his own, and a carrier cannot re-wrap anyone's. Keys of small order
//! (whose shared secret is all zero, which anyone could compute) are refused.

use crypto_box::aead::{Aead, AeadCore};
use crypto_box::ChaChaBox;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use crate::envelope::Kind;
use crate::identity::{self, Identity};
use crate::ids::{MessageId, PeerId};

/// Longest text message, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 4000;
pub use crate::name::MAX_NAME_BYTES;
/// Most message ids one receipt may acknowledge.
pub const MAX_RECEIPT_IDS: usize = 64;
/// Longest meet-up place, in bytes of UTF-8 ("the big tree left of the
/// main stage, by the flags").
pub const MAX_PLACE_BYTES: usize = 200;
/// How long a meet-up card stays after its time (people arrive late, and
/// look for the card on the way): 30 minutes. Then it is neither shown,
/// taken nor passed on, and neither are its answers.
pub const MEETUP_GRACE_MS: u64 = 30 * 60_000;
const SEAL_NONCE_BYTES: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("text is empty")]
    EmptyText,
    #[error("text of {len} bytes exceeds the {max}-byte limit")]
    TextTooLong { len: usize, max: usize },
    #[error("text is not valid UTF-8")]
    NotUtf8,
    #[error("name {0}")]
    BadName(#[from] crate::name::NameProblem),
    #[error("receipt must acknowledge 1 to {max} ids", max = MAX_RECEIPT_IDS)]
    BadReceipt,
    #[error("malformed {0:?} body")]
    Malformed(Kind),
    #[error("sealed message cannot be opened by this identity")]
    NotForMe,
    #[error("sealed message failed to open (tampered or wrong key)")]
    OpenFailed,
    #[error("recipient key is not a valid Ed25519 point, or of small order")]
    BadRecipient,
    #[error("sealed message names another sender or recipient than its envelope")]
    Misbound,
    #[error("a meet-up needs a place")]
    EmptyPlace,
    #[error("place of {len} bytes exceeds the {max}-byte limit")]
    PlaceTooLong { len: usize, max: usize },
    #[error("a meet-up place is one line of text")]
    PlaceNotOneLine,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Delivered,
    Read,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ReceiptBody {
    pub status: ReceiptStatus,
    pub ids: Vec<MessageId>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SealedBody {
    pub recipient: PeerId,
    pub nonce: [u8; SEAL_NONCE_BYTES],
    pub ciphertext: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ProfileBody {
    pub name: String,
}

/// An organiser's announcement: its text, and when it ends (milliseconds
/// since the Unix epoch): after that it is neither shown, taken nor passed
/// on.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AnnouncementBody {
    pub text: String,
    pub until: u64,
}

/// "Meet at `place` at `at`" (milliseconds since the Unix epoch), in a
/// room. Shown as a card until [`MEETUP_GRACE_MS`] after `at`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MeetupBody {
    pub place: String,
    pub at: u64,
}

impl MeetupBody {
    /// When the card goes, and with it the meet-up and its answers.
    pub fn end(&self) -> u64 {
        self.at.saturating_add(MEETUP_GRACE_MS)
    }
}

/// An answer to a meet-up.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum MeetupAnswer {
    Coming,
    Cant,
}

/// A person's answer to the meet-up `meetup` of the same room; the
/// answer with the highest seq of each author counts. `until` is the
/// meet-up's end, copied so a carrier that never saw the meet-up still
/// drops the answer when the card is gone.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MeetupReplyBody {
    pub meetup: MessageId,
    pub answer: MeetupAnswer,
    pub until: u64,
}

/// What a sealed body holds: a message (kind `SealedDm`) or the receipt
/// for DMs (kind `SealedReceipt`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum DmContent {
    Text(String),
    Receipt(ReceiptBody),
}

impl DmContent {
    fn kind(&self) -> Kind {
        match self {
            DmContent::Text(_) => Kind::SealedDm,
            DmContent::Receipt(_) => Kind::SealedReceipt,
        }
    }
}

/// The plaintext inside a sealed body: who sealed it to whom, bound under
/// the box's tag.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
struct DmPlain {
    from: PeerId,
    to: PeerId,
    content: DmContent,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Body {
    Text(String),
    Receipt(ReceiptBody),
    SealedDm(SealedBody),
    Profile(ProfileBody),
    SealedReceipt(SealedBody),
    Announcement(AnnouncementBody),
    Meetup(MeetupBody),
    MeetupReply(MeetupReplyBody),
    SealedGroup(crate::group::SealedGroupBody),
    Photo(crate::photo::PhotoBody),
    PhotoChunk(crate::photo::PhotoChunkBody),
}

/// A meet-up's place: one line of text, not empty, at most
/// [`MAX_PLACE_BYTES`].
pub fn check_place(place: &str) -> Result<(), BodyError> {
    if place.trim().is_empty() {
        return Err(BodyError::EmptyPlace);
    }
    if place.len() > MAX_PLACE_BYTES {
        return Err(BodyError::PlaceTooLong { len: place.len(), max: MAX_PLACE_BYTES });
    }
    // Line breaks and other controls, and the direction overrides that
    // would let a place read backwards ("etag" shown as "gate").
    let bidi =
        |c: char| matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if place.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}' || bidi(c)) {
        return Err(BodyError::PlaceNotOneLine);
    }
    Ok(())
}

pub fn check_text(text: &str) -> Result<(), BodyError> {
    if text.trim().is_empty() {
        return Err(BodyError::EmptyText);
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(BodyError::TextTooLong { len: text.len(), max: MAX_TEXT_BYTES });
    }
    Ok(())
}

/// A display name as the protocol accepts it (see [`crate::name`]).
pub fn check_name(name: &str) -> Result<(), BodyError> {
    Ok(crate::name::check_name(name)?)
}

fn check_receipt(r: &ReceiptBody) -> Result<(), BodyError> {
    if r.ids.is_empty() || r.ids.len() > MAX_RECEIPT_IDS {
        return Err(BodyError::BadReceipt);
    }
    Ok(())
}

fn strict<'a, T: Deserialize<'a>>(kind: Kind, bytes: &'a [u8]) -> Result<T, BodyError> {
    match postcard::take_from_bytes(bytes) {
        Ok((v, [])) => Ok(v),
        _ => Err(BodyError::Malformed(kind)),
    }
}

impl Body {
    /// Parse and check a body against its kind's rules.
    pub fn parse(kind: Kind, bytes: &[u8]) -> Result<Body, BodyError> {
        match kind {
            Kind::Text => {
                let text = std::str::from_utf8(bytes).map_err(|_| BodyError::NotUtf8)?;
                check_text(text)?;
                Ok(Body::Text(text.to_owned()))
            }
            Kind::Receipt => {
                let r: ReceiptBody = strict(kind, bytes)?;
                check_receipt(&r)?;
                Ok(Body::Receipt(r))
            }
            Kind::SealedDm => Ok(Body::SealedDm(strict(kind, bytes)?)),
            Kind::SealedReceipt => Ok(Body::SealedReceipt(strict(kind, bytes)?)),
            Kind::Profile => {
                let p: ProfileBody = strict(kind, bytes)?;
                check_name(&p.name)?;
                Ok(Body::Profile(p))
            }
            Kind::Announcement => {
                let a: AnnouncementBody = strict(kind, bytes)?;
                check_text(&a.text)?;
                Ok(Body::Announcement(a))
            }
            Kind::Meetup => {
                let m: MeetupBody = strict(kind, bytes)?;
                check_place(&m.place)?;
                Ok(Body::Meetup(m))
            }
            Kind::MeetupReply => Ok(Body::MeetupReply(strict(kind, bytes)?)),
            Kind::GroupMessage => {
                let g: crate::group::SealedGroupBody = strict(kind, bytes)?;
                crate::group::check_body(&g).map_err(|_| BodyError::Malformed(kind))?;
                Ok(Body::SealedGroup(g))
            }
            Kind::Photo => {
                let p: crate::photo::PhotoBody = strict(kind, bytes)?;
                crate::photo::check_header(&p)?;
                Ok(Body::Photo(p))
            }
            Kind::PhotoChunk => {
                let c: crate::photo::PhotoChunkBody = strict(kind, bytes)?;
                crate::photo::check_chunk(&c)?;
                Ok(Body::PhotoChunk(c))
            }
        }
    }

    /// When what it holds stops being shown, taken and passed on, for the
    /// kinds that end before the festival's message lifetime: an
    /// announcement's `until`, a meet-up's time plus [`MEETUP_GRACE_MS`],
    /// an answer's copy of that.
    pub fn end(&self) -> Option<u64> {
        match self {
            Body::Announcement(a) => Some(a.until),
            Body::Meetup(m) => Some(m.end()),
            Body::MeetupReply(r) => Some(r.until),
            _ => None,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Body::Text(_) => Kind::Text,
            Body::Receipt(_) => Kind::Receipt,
            Body::SealedDm(_) => Kind::SealedDm,
            Body::Profile(_) => Kind::Profile,
            Body::SealedReceipt(_) => Kind::SealedReceipt,
            Body::Announcement(_) => Kind::Announcement,
            Body::Meetup(_) => Kind::Meetup,
            Body::MeetupReply(_) => Kind::MeetupReply,
            Body::SealedGroup(_) => Kind::GroupMessage,
            Body::Photo(_) => Kind::Photo,
            Body::PhotoChunk(_) => Kind::PhotoChunk,
        }
    }

    /// The sealed part of a DM or DM receipt.
    pub fn sealed(&self) -> Option<&SealedBody> {
        match self {
            Body::SealedDm(s) | Body::SealedReceipt(s) => Some(s),
            _ => None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            Body::Text(t) => t.as_bytes().to_vec(),
            Body::Receipt(r) => postcard::to_stdvec(r).expect("in-memory encode"),
            Body::SealedDm(s) | Body::SealedReceipt(s) => postcard::to_stdvec(s).expect("in-memory encode"),
            Body::Profile(p) => postcard::to_stdvec(p).expect("in-memory encode"),
            Body::Announcement(a) => postcard::to_stdvec(a).expect("in-memory encode"),
            Body::Meetup(m) => postcard::to_stdvec(m).expect("in-memory encode"),
            Body::MeetupReply(r) => postcard::to_stdvec(r).expect("in-memory encode"),
            Body::SealedGroup(g) => postcard::to_stdvec(g).expect("in-memory encode"),
            Body::Photo(p) => postcard::to_stdvec(p).expect("in-memory encode"),
            Body::PhotoChunk(c) => postcard::to_stdvec(c).expect("in-memory encode"),
        }
    }
}

/// Seal `text` from `me` to `to`.
pub fn seal_dm(me: &Identity, to: &PeerId, text: &str, rng: &mut impl CryptoRngCore) -> Result<SealedBody, BodyError> {
    check_text(text)?;
    seal(me, to, DmContent::Text(text.to_owned()), rng)
}

/// Seal a receipt for DMs of `to` (their author), so only they learn which
/// messages reached us and which we read.
pub fn seal_receipt(
    me: &Identity,
    to: &PeerId,
    receipt: ReceiptBody,
    rng: &mut impl CryptoRngCore,
) -> Result<SealedBody, BodyError> {
    check_receipt(&receipt)?;
    seal(me, to, DmContent::Receipt(receipt), rng)
}

fn seal(me: &Identity, to: &PeerId, content: DmContent, rng: &mut impl CryptoRngCore) -> Result<SealedBody, BodyError> {
    let their = identity::x25519_public(to).map_err(|_| BodyError::BadRecipient)?;
    let cbox = ChaChaBox::new(&their, &me.x25519_secret());
    let nonce = ChaChaBox::generate_nonce(rng);
    let plain = postcard::to_stdvec(&DmPlain { from: me.peer_id(), to: *to, content }).expect("in-memory encode");
    let ciphertext = cbox.encrypt(&nonce, plain.as_slice()).map_err(|_| BodyError::OpenFailed)?;
    Ok(SealedBody { recipient: *to, nonce: nonce.into(), ciphertext })
}

/// Open a sealed envelope (a DM or a DM receipt) that `me` sent or that was
/// sent to `me`. The plaintext must name the envelope's author as its
/// sender and the sealed body's recipient as its recipient, and its content
/// must match the envelope's kind; anything else is refused.
pub fn open(me: &Identity, env: &crate::envelope::SignedEnvelope) -> Result<DmContent, BodyError> {
    let body = env.parsed_body();
    let sealed = body.sealed().ok_or(BodyError::Malformed(env.kind()))?;
    let author = env.author();
    let mine = author == me.peer_id();
    if !mine && sealed.recipient != me.peer_id() {
        return Err(BodyError::NotForMe);
    }
    // The other end of the box: the recipient for what we sent, the
    // author for what we received.
    let other = if mine { sealed.recipient } else { author };
    let theirs = identity::x25519_public(&other).map_err(|_| BodyError::OpenFailed)?;
    let cbox = ChaChaBox::new(&theirs, &me.x25519_secret());
    let plain =
        cbox.decrypt(sealed.nonce.as_ref().into(), sealed.ciphertext.as_slice()).map_err(|_| BodyError::OpenFailed)?;
    let p: DmPlain = strict(env.kind(), &plain).map_err(|_| BodyError::OpenFailed)?;
    if p.from != author || p.to != sealed.recipient || p.content.kind() != env.kind() {
        return Err(BodyError::Misbound);
    }
    if let DmContent::Receipt(r) = &p.content {
        check_receipt(r)?;
    }
    Ok(p.content)
}

/// The text of a DM `me` sent or received; `NotForMe` for a receipt.
pub fn open_dm(me: &Identity, env: &crate::envelope::SignedEnvelope) -> Result<String, BodyError> {
    match open(me, env)? {
        DmContent::Text(t) => Ok(t),
        DmContent::Receipt(_) => Err(BodyError::Malformed(env.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use crate::envelope::{Draft, SignedEnvelope};
    use crate::ids::RoomId;

    fn dm_envelope(author: &Identity, kind: Kind, sealed: &SealedBody) -> SignedEnvelope {
        let body = postcard::to_stdvec(sealed).unwrap();
        SignedEnvelope::sign(author, Draft { seq: 1, room: RoomId::direct(), kind, created_at: 1, body }).unwrap()
    }

    #[test]
    fn only_the_recipient_opens_a_sealed_dm() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let (a, b, c) = (Identity::generate(&mut rng), Identity::generate(&mut rng), Identity::generate(&mut rng));
        let sealed = seal_dm(&a, &b.peer_id(), "meet at the bar", &mut rng).unwrap();
        let env = dm_envelope(&a, Kind::SealedDm, &sealed);
        assert_eq!(open_dm(&b, &env).unwrap(), "meet at the bar");
        assert_eq!(open_dm(&a, &env).unwrap(), "meet at the bar", "the author reads its own");
        assert_eq!(open_dm(&c, &env), Err(BodyError::NotForMe));
        // A carrier who posts it as its own cannot: the box is bound to A's key.
        assert_eq!(open_dm(&b, &dm_envelope(&c, Kind::SealedDm, &sealed)), Err(BodyError::OpenFailed));
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(open_dm(&b, &dm_envelope(&a, Kind::SealedDm, &tampered)), Err(BodyError::OpenFailed));
    }

    #[test]
    fn a_dm_cannot_be_reposted_to_its_author_as_the_recipients_own() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let (alice, bob) = (Identity::generate(&mut rng), Identity::generate(&mut rng));
        let sealed = seal_dm(&alice, &bob.peer_id(), "I owe you 50", &mut rng).unwrap();
        // Bob re-posts Alice's ciphertext, addressed back to Alice, as his own:
        // the box key is the same both ways, so it decrypts, but it names
        // Alice as its sender and Bob as its recipient.
        let mut back = sealed.clone();
        back.recipient = alice.peer_id();
        assert_eq!(open_dm(&alice, &dm_envelope(&bob, Kind::SealedDm, &back)), Err(BodyError::Misbound));
        // Nor can a DM pass as a receipt.
        assert_eq!(open(&bob, &dm_envelope(&alice, Kind::SealedReceipt, &sealed)), Err(BodyError::Misbound));
    }

    #[test]
    fn receipts_travel_sealed_to_the_dm_author() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (alice, bob, eve) =
            (Identity::generate(&mut rng), Identity::generate(&mut rng), Identity::generate(&mut rng));
        let r = ReceiptBody { status: ReceiptStatus::Read, ids: vec![MessageId::from_bytes([7; 32])] };
        let sealed = seal_receipt(&bob, &alice.peer_id(), r.clone(), &mut rng).unwrap();
        let env = dm_envelope(&bob, Kind::SealedReceipt, &sealed);
        assert_eq!(open(&alice, &env), Ok(DmContent::Receipt(r)));
        assert_eq!(open(&eve, &env), Err(BodyError::NotForMe));
        assert!(!env.bytes().windows(32).any(|w| w == [7; 32]), "the acknowledged id is not in clear");
    }

    #[test]
    fn small_order_keys_are_refused_as_recipients() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let a = Identity::generate(&mut rng);
        // The Ed25519 identity point (0, 1): of order 1, its X25519 shared
        // secret with anyone is all zero.
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        assert_eq!(seal_dm(&a, &PeerId::from_bytes(identity_point), "hi", &mut rng), Err(BodyError::BadRecipient));
        assert!(!crate::identity::is_valid_key(&PeerId::from_bytes(identity_point)));
    }

    #[test]
    fn bodies_are_checked_per_kind() {
        assert_eq!(Body::parse(Kind::Text, b"  "), Err(BodyError::EmptyText));
        assert_eq!(Body::parse(Kind::Text, &[0xff, 0xfe]), Err(BodyError::NotUtf8));
        assert!(matches!(Body::parse(Kind::Text, &vec![b'a'; MAX_TEXT_BYTES + 1]), Err(BodyError::TextTooLong { .. })));
        assert_eq!(Body::parse(Kind::Receipt, &[1, 2, 3]), Err(BodyError::Malformed(Kind::Receipt)));
        let empty = Body::Receipt(ReceiptBody { status: ReceiptStatus::Read, ids: vec![] }).encode();
        assert_eq!(Body::parse(Kind::Receipt, &empty), Err(BodyError::BadReceipt));
        let name = Body::Profile(ProfileBody { name: "Ana".into() }).encode();
        assert!(Body::parse(Kind::Profile, &name).is_ok());
        let hidden = Body::Profile(ProfileBody { name: "A\u{200B}na".into() }).encode();
        assert!(matches!(Body::parse(Kind::Profile, &hidden), Err(BodyError::BadName(_))));
    }

    #[test]
    fn meetups_need_a_one_line_place_within_the_limit() {
        let meetup = |place: &str| Body::Meetup(MeetupBody { place: place.into(), at: 5 }).encode();
        let ok = Body::parse(Kind::Meetup, &meetup("bar by the main stage")).unwrap();
        assert_eq!(ok.end(), Some(5 + MEETUP_GRACE_MS));
        assert_eq!(Body::parse(Kind::Meetup, &meetup("  ")), Err(BodyError::EmptyPlace));
        assert_eq!(Body::parse(Kind::Meetup, &meetup("bar\ngate")), Err(BodyError::PlaceNotOneLine));
        assert_eq!(Body::parse(Kind::Meetup, &meetup("bar \u{202E}etag")), Err(BodyError::PlaceNotOneLine));
        assert!(Body::parse(Kind::Meetup, &meetup("🎡 big wheel, Ω gate")).is_ok());
        let long = "x".repeat(MAX_PLACE_BYTES + 1);
        assert!(matches!(Body::parse(Kind::Meetup, &meetup(&long)), Err(BodyError::PlaceTooLong { .. })));
        // A body of another kind, or with bytes left over, is malformed.
        assert_eq!(Body::parse(Kind::Meetup, b"bar"), Err(BodyError::Malformed(Kind::Meetup)));
        let mut trailing = meetup("bar");
        trailing.push(0);
        assert_eq!(Body::parse(Kind::Meetup, &trailing), Err(BodyError::Malformed(Kind::Meetup)));
        let reply = MeetupReplyBody { meetup: MessageId::from_bytes([1; 32]), answer: MeetupAnswer::Cant, until: 9 };
        let parsed = Body::parse(Kind::MeetupReply, &Body::MeetupReply(reply.clone()).encode()).unwrap();
        assert_eq!(parsed, Body::MeetupReply(reply));
        assert_eq!(parsed.end(), Some(9));
        assert_eq!(Body::parse(Kind::MeetupReply, &[1, 2]), Err(BodyError::Malformed(Kind::MeetupReply)));
    }
}
