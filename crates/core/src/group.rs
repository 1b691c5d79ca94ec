//! Private groups: a friend group of up to [`MAX_GROUP_MEMBERS`] whose
//! messages only its members can read, with no group state to sync.
//!
//! Each message (kind `GroupMessage`, in the DM mailbox room, carried by
//! everyone like a sealed DM) is encrypted once with a fresh random key
//! (XChaCha20-Poly1305, `crypto_secretbox`), and that key is wrapped to
//! every member, the author included, with the same box as DMs (X25519 from
//! the Ed25519 identities + XChaCha20-Poly1305, `crypto_box`). The members'
//! keys are in clear, like a DM's recipient: a carrier learns who is in a
//! group, never what they say or what the group is called. The plaintext
//! names its sender, the group (a random 16-byte id), its name and its
//! member list; the opener checks the sender is the envelope's author and
//! one of the members, the list is the body's, and the key is the one the
//! body commits to. Membership changes only by messages that say so: one
//! makes the group (`Members`), one adds people (`Added`, by a member), one
//! leaves (`Left`, the author only); a text changes nothing (see
//! `festival_store::groups` for how a member applies them).

use crypto_box::aead::{Aead, AeadCore};
use crypto_box::ChaChaBox;
use crypto_secretbox::{KeyInit, XChaCha20Poly1305};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use crate::body::{check_text, BodyError};
use crate::envelope::{Kind, SignedEnvelope};
use crate::identity::{self, Identity};
use crate::ids::PeerId;

/// Most members a group has, its creator included.
pub const MAX_GROUP_MEMBERS: usize = 32;
/// Longest group name, in bytes of UTF-8.
pub const MAX_GROUP_NAME_BYTES: usize = 64;
const NONCE: usize = 24;
/// A wrapped message key: the 32-byte key and the box's 16-byte tag.
const WRAPPED: usize = 48;

/// A group's id: 16 random bytes its creator drew.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupId(pub [u8; 16]);

impl GroupId {
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut b = [0; 16];
        rng.fill_bytes(&mut b);
        GroupId(b)
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    pub fn from_hex(s: &str) -> Option<Self> {
        let v = hex::decode(s.trim()).ok()?;
        Some(GroupId(v.try_into().ok()?))
    }
}

impl std::fmt::Debug for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupId({})", &self.to_hex()[..8])
    }
}

/// The body of a `GroupMessage` envelope.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SealedGroupBody {
    /// Everyone it is for, the author included: sorted, no repeats, 1 to
    /// [`MAX_GROUP_MEMBERS`].
    pub members: Vec<PeerId>,
    /// The nonce of every member's wrapped key (each box key differs).
    pub wrap_nonce: [u8; NONCE],
    /// The message key, boxed to each member in `members`' order: 48 bytes
    /// each (the key and the box's tag), one after the other.
    pub keys: Vec<u8>,
    pub nonce: [u8; NONCE],
    pub ciphertext: Vec<u8>,
    /// A commitment to the message key (BLAKE3 keyed by it): every member
    /// who opens it checks the key it unwrapped is the one committed to, so
    /// an author cannot wrap different keys to different members and show
    /// them different messages under one id.
    pub key_commitment: [u8; 32],
}

/// What a group message says.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum GroupContent {
    Text(String),
    /// The group is made, of `members`.
    Members,
    /// The author leaves; `members` are those it leaves behind, and itself.
    Left,
    /// The author adds these people (each in `members`).
    Added(Vec<PeerId>),
}

/// The plaintext of a group message.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GroupPlain {
    pub from: PeerId,
    pub group: GroupId,
    pub name: String,
    /// As the body's `members`.
    pub members: Vec<PeerId>,
    pub content: GroupContent,
}

/// Why a group message cannot be made or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("a group has 1 to {MAX_GROUP_MEMBERS} members, no one twice")]
    BadMembers,
    #[error("a member's key is not a valid Ed25519 point, or of small order")]
    BadMember,
    #[error("a group name is 1 to {MAX_GROUP_NAME_BYTES} bytes, one line")]
    BadName,
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("this group message is not for this identity")]
    NotForMe,
    #[error("the group message failed to open (tampered or wrong key)")]
    OpenFailed,
    #[error("the group message names another sender or members than its envelope")]
    Misbound,
}

fn commit(key: &[u8; 32]) -> [u8; 32] {
    *blake3::keyed_hash(key, b"festival group message key").as_bytes()
}

/// Checks of a body's structure every node applies (no key needed).
pub fn check_body(b: &SealedGroupBody) -> Result<(), GroupError> {
    let n = b.members.len();
    if n == 0 || n > MAX_GROUP_MEMBERS || b.keys.len() != n * WRAPPED || !b.members.windows(2).all(|w| w[0] < w[1]) {
        return Err(GroupError::BadMembers);
    }
    Ok(())
}

/// A group name: one line, 1 to [`MAX_GROUP_NAME_BYTES`] bytes, by the
/// rules of a meet-up's place (no controls, line separators or direction
/// marks: a name that reads backwards could pass for another group's).
pub fn check_group_name(name: &str) -> Result<(), GroupError> {
    if name.len() > MAX_GROUP_NAME_BYTES || crate::body::check_place(name).is_err() {
        return Err(GroupError::BadName);
    }
    Ok(())
}

/// The member list as a body holds it: sorted, no repeats, the author in.
pub fn member_list(me: &PeerId, others: &[PeerId]) -> Result<Vec<PeerId>, GroupError> {
    let mut all: Vec<PeerId> = others.iter().copied().chain(std::iter::once(*me)).collect();
    all.sort();
    all.dedup();
    if all.len() > MAX_GROUP_MEMBERS {
        return Err(GroupError::BadMembers);
    }
    if all.iter().any(|p| !identity::is_valid_key(p)) {
        return Err(GroupError::BadMember);
    }
    Ok(all)
}

/// Seal `content` for `group` (named `name`) to `members` (sorted, the
/// author in: see [`member_list`]).
pub fn seal(
    me: &Identity,
    group: GroupId,
    name: &str,
    members: Vec<PeerId>,
    content: GroupContent,
    rng: &mut impl CryptoRngCore,
) -> Result<SealedGroupBody, GroupError> {
    check_group_name(name)?;
    check_content(&content, &members)?;
    if members.is_empty()
        || members.len() > MAX_GROUP_MEMBERS
        || !members.windows(2).all(|w| w[0] < w[1])
        || !members.contains(&me.peer_id())
    {
        return Err(GroupError::BadMembers);
    }
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut key);
    let cipher = XChaCha20Poly1305::new(&key.into());
    let mut nonce = [0u8; NONCE];
    rng.fill_bytes(&mut nonce);
    let plain =
        GroupPlain { from: me.peer_id(), group, name: name.trim().to_owned(), members: members.clone(), content };
    let bytes = postcard::to_stdvec(&plain).expect("in-memory encode");
    let ciphertext = cipher.encrypt(&nonce.into(), bytes.as_slice()).map_err(|_| GroupError::OpenFailed)?;
    let wrap_nonce = ChaChaBox::generate_nonce(&mut *rng);
    let mut keys = Vec::with_capacity(members.len() * WRAPPED);
    for m in &members {
        let their = identity::x25519_public(m).map_err(|_| GroupError::BadMember)?;
        let wrapped = ChaChaBox::new(&their, &me.x25519_secret())
            .encrypt(&wrap_nonce, key.as_slice())
            .map_err(|_| GroupError::OpenFailed)?;
        if wrapped.len() != WRAPPED {
            return Err(GroupError::OpenFailed);
        }
        keys.extend_from_slice(&wrapped);
    }
    let key_commitment = commit(&key);
    zeroize::Zeroize::zeroize(&mut key);
    Ok(SealedGroupBody { members, wrap_nonce: wrap_nonce.into(), keys, nonce, ciphertext, key_commitment })
}

/// A text is a text's; the people added are among the members.
fn check_content(content: &GroupContent, members: &[PeerId]) -> Result<(), GroupError> {
    match content {
        GroupContent::Text(t) => check_text(t)?,
        GroupContent::Added(added) => {
            if added.is_empty() || added.iter().any(|p| members.binary_search(p).is_err()) {
                return Err(GroupError::BadMembers);
            }
        }
        GroupContent::Members | GroupContent::Left => {}
    }
    Ok(())
}

/// Open a group message `me` is a member of (the author included).
pub fn open(me: &Identity, env: &SignedEnvelope) -> Result<GroupPlain, GroupError> {
    if env.kind() != Kind::GroupMessage {
        return Err(GroupError::NotForMe);
    }
    let body: SealedGroupBody = match postcard::take_from_bytes(env.body()) {
        Ok((b, [])) => b,
        _ => return Err(GroupError::OpenFailed),
    };
    check_body(&body)?;
    let my_id = me.peer_id();
    let at = body.members.binary_search(&my_id).map_err(|_| GroupError::NotForMe)?;
    let author = identity::x25519_public(&env.author()).map_err(|_| GroupError::OpenFailed)?;
    let mut key: [u8; 32] = ChaChaBox::new(&author, &me.x25519_secret())
        .decrypt(body.wrap_nonce.as_ref().into(), &body.keys[at * WRAPPED..(at + 1) * WRAPPED])
        .map_err(|_| GroupError::OpenFailed)?
        .try_into()
        .map_err(|_| GroupError::OpenFailed)?;
    if commit(&key) != body.key_commitment {
        zeroize::Zeroize::zeroize(&mut key);
        return Err(GroupError::OpenFailed);
    }
    let cipher = XChaCha20Poly1305::new(&key.into());
    zeroize::Zeroize::zeroize(&mut key);
    let bytes =
        cipher.decrypt(body.nonce.as_ref().into(), body.ciphertext.as_slice()).map_err(|_| GroupError::OpenFailed)?;
    let plain: GroupPlain = match postcard::take_from_bytes(&bytes) {
        Ok((p, [])) => p,
        _ => return Err(GroupError::OpenFailed),
    };
    // The author is one of the members it sealed to.
    if plain.from != env.author() || plain.members != body.members || body.members.binary_search(&plain.from).is_err() {
        return Err(GroupError::Misbound);
    }
    check_group_name(&plain.name)?;
    check_content(&plain.content, &plain.members)?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Draft;
    use crate::ids::RoomId;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn env(author: &Identity, seq: u64, body: &SealedGroupBody) -> SignedEnvelope {
        let draft = Draft {
            seq,
            room: RoomId::direct(),
            kind: Kind::GroupMessage,
            created_at: 1,
            body: postcard::to_stdvec(body).unwrap(),
        };
        SignedEnvelope::sign(author, draft).unwrap()
    }

    #[test]
    fn members_read_it_and_a_carrier_cannot() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let [ana, ben, cy, dee] = [0; 4].map(|_| Identity::generate(&mut rng));
        let group = GroupId::generate(&mut rng);
        let members = member_list(&ana.peer_id(), &[ben.peer_id(), cy.peer_id()]).unwrap();
        let content = GroupContent::Text("meet at the wheel".into());
        let sealed = seal(&ana, group, "Camp crew", members.clone(), content.clone(), &mut rng).unwrap();
        let e = env(&ana, 1, &sealed);
        for reader in [&ana, &ben, &cy] {
            let plain = open(reader, &e).expect("a member reads it");
            assert_eq!(
                (plain.group, plain.name.as_str(), &plain.members, &plain.content),
                (group, "Camp crew", &members, &content)
            );
        }
        assert_eq!(open(&dee, &e), Err(GroupError::NotForMe), "a carrier cannot");
        let text = b"meet at the wheel";
        assert!(!e.bytes().windows(text.len()).any(|w| w == text), "no text in clear");
        assert!(!e.bytes().windows(9).any(|w| w == b"Camp crew"), "no name in clear");
    }

    #[test]
    fn a_member_cannot_pass_anothers_message_off_as_its_own_nor_tamper() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let [ana, ben, cy] = [0; 3].map(|_| Identity::generate(&mut rng));
        let members = member_list(&ana.peer_id(), &[ben.peer_id(), cy.peer_id()]).unwrap();
        let sealed =
            seal(&ana, GroupId([1; 16]), "g", members, GroupContent::Text("I owe you 50".into()), &mut rng).unwrap();
        // Ben re-posts Ana's body as his own: the keys were boxed by Ana, so
        // they do not open from Ben; and the plaintext names Ana anyway.
        assert_eq!(open(&cy, &env(&ben, 1, &sealed)), Err(GroupError::OpenFailed));
        let mut tampered = sealed.clone();
        let last = tampered.ciphertext.len() - 1;
        tampered.ciphertext[last] ^= 1;
        assert_eq!(open(&cy, &env(&ana, 1, &tampered)), Err(GroupError::OpenFailed));
        // The clear member list must be the sealed one: dropping Cy from it
        // (to hide that Cy reads it) is caught by whoever still opens it.
        // A key commitment that is not the key's: nobody opens it.
        let mut other_key = sealed.clone();
        other_key.key_commitment[0] ^= 1;
        assert_eq!(open(&cy, &env(&ana, 1, &other_key)), Err(GroupError::OpenFailed));
        let mut fewer = sealed.clone();
        let at = fewer.members.binary_search(&cy.peer_id()).unwrap();
        fewer.members.remove(at);
        fewer.keys.drain(at * WRAPPED..(at + 1) * WRAPPED);
        assert_eq!(open(&ben, &env(&ana, 1, &fewer)), Err(GroupError::Misbound));
    }

    #[test]
    fn member_lists_and_names_are_checked() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let ana = Identity::generate(&mut rng);
        let many: Vec<PeerId> = (0..MAX_GROUP_MEMBERS).map(|_| Identity::generate(&mut rng).peer_id()).collect();
        assert_eq!(member_list(&ana.peer_id(), &many), Err(GroupError::BadMembers), "33 with Ana");
        assert_eq!(member_list(&ana.peer_id(), &many[..31]).map(|m| m.len()), Ok(32));
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        assert_eq!(member_list(&ana.peer_id(), &[PeerId::from_bytes(identity_point)]), Err(GroupError::BadMember));
        let me = vec![ana.peer_id()];
        assert_eq!(
            seal(&ana, GroupId([0; 16]), " ", me.clone(), GroupContent::Members, &mut rng),
            Err(GroupError::BadName)
        );
        assert_eq!(
            seal(&ana, GroupId([0; 16]), "x".repeat(65).as_str(), me.clone(), GroupContent::Members, &mut rng),
            Err(GroupError::BadName)
        );
        let other = vec![many[0]];
        assert_eq!(
            seal(&ana, GroupId([0; 16]), "g", other, GroupContent::Members, &mut rng),
            Err(GroupError::BadMembers)
        );
        // What every node checks without a key: sorted, no repeats, one key each.
        let mut body = seal(&ana, GroupId([0; 16]), "g", me, GroupContent::Members, &mut rng).unwrap();
        assert_eq!(check_body(&body), Ok(()));
        body.members.push(body.members[0]);
        assert_eq!(check_body(&body), Err(GroupError::BadMembers));
    }
}
