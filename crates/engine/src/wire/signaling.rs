//! Signaling: how two nodes on a LAN agree to open a data channel.
//!
//! The node with the lower PeerId dials the other's advertised TCP port and
//! sends a signed offer; the other answers with a signed answer. Each SDP
//! carries its side's DTLS fingerprint, and the DTLS handshake checks the far
//! end's certificate against it, so a channel that opens is bound to the
//! identity that signed the SDP: the TXT record's claim is proven here.
//!
//! Wire: one message each way, a 4-byte big-endian length then a postcard
//! `SignalMsg`, at most [`MAX_SIGNAL_BYTES`]. See docs/protocol.md.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use festival_core::envelope::Sig;
use festival_core::identity::{self, Identity};
use festival_core::PeerId;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const SIGNAL_VERSION: u8 = 1;
/// An SDP with a handful of host candidates is ~1-2 KiB; 16 KiB leaves room
/// for many interfaces and refuses anything absurd before reading it.
pub const MAX_SIGNAL_BYTES: usize = 16 * 1024;
/// A peer gets this long to send its whole message.
pub const SIGNAL_IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Offers older (or newer) than this are refused as replays; clocks at a
/// festival are phone clocks, good to well within this.
pub const MAX_OFFER_AGE_MS: u64 = 5 * 60_000;
/// Offer nonces remembered against replay (more than an hour of dialling).
const SEEN_NONCES: usize = 4096;

const OFFER_DOMAIN: &[u8] = b"festival-chat/offer/v1\0";
const ANSWER_DOMAIN: &[u8] = b"festival-chat/answer/v1\0";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub version: u8,
    pub festival: String,
    pub from: PeerId,
    pub to: PeerId,
    pub nonce: [u8; 16],
    /// Dialer's clock, ms since the Unix epoch.
    pub sent_at: u64,
    pub sdp: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub version: u8,
    pub from: PeerId,
    pub to: PeerId,
    /// The offer's nonce: this answer is for that offer and no other.
    pub nonce: [u8; 16],
    pub sdp: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignalMsg {
    Offer {
        offer: Offer,
        sig: Sig,
    },
    Answer {
        answer: Answer,
        sig: Sig,
    },
    /// The listener declines (peer limit, wrong festival ...), with a reason.
    Reject {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("signaling I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("peer too slow (no complete message within {0:?})")]
    Timeout(Duration),
    #[error("signaling message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("malformed signaling message")]
    Malformed,
    #[error("signaling version {0} is not supported")]
    Version(u8),
    #[error("signature does not verify")]
    BadSignature,
    #[error("offer for festival {0:?}, not ours")]
    WrongFestival(String),
    #[error("message addressed to another peer")]
    NotForMe,
    #[error("answer from {got:?}, expected {expected:?}")]
    WrongPeer { expected: PeerId, got: PeerId },
    #[error("offer is stale or from the future")]
    Stale,
    #[error("offer replayed")]
    Replay,
    #[error("unexpected message")]
    Unexpected,
    #[error("peer declined: {0}")]
    Rejected(String),
}

impl SignalError {
    /// Counter label.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io(_) => "io",
            Self::Timeout(_) => "timeout",
            Self::TooLarge(_) => "too_large",
            Self::Malformed => "malformed",
            Self::Version(_) => "version",
            Self::BadSignature => "bad_signature",
            Self::WrongFestival(_) => "wrong_festival",
            Self::NotForMe => "not_for_me",
            Self::WrongPeer { .. } => "wrong_peer",
            Self::Stale => "stale",
            Self::Replay => "replay",
            Self::Unexpected => "unexpected",
            Self::Rejected(_) => "rejected",
        }
    }
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).expect("in-memory encode")
}

impl Offer {
    pub fn sign(self, me: &Identity) -> SignalMsg {
        let sig = Sig(me.sign(OFFER_DOMAIN, &encode(&self)));
        SignalMsg::Offer { offer: self, sig }
    }
}

impl Answer {
    pub fn sign(self, me: &Identity) -> SignalMsg {
        let sig = Sig(me.sign(ANSWER_DOMAIN, &encode(&self)));
        SignalMsg::Answer { answer: self, sig }
    }
}

/// Checks offers as the listening side: signature, addressee, festival,
/// freshness, and that the same offer is never accepted twice.
pub struct OfferCheck {
    me: PeerId,
    festival: String,
    seen: HashSet<[u8; 16]>,
    order: VecDeque<[u8; 16]>,
}

impl OfferCheck {
    pub fn new(me: PeerId, festival: String) -> Self {
        Self { me, festival, seen: HashSet::new(), order: VecDeque::new() }
    }

    pub fn verify(&mut self, offer: &Offer, sig: &Sig, now_ms: u64) -> Result<(), SignalError> {
        if offer.version != SIGNAL_VERSION {
            return Err(SignalError::Version(offer.version));
        }
        identity::verify(&offer.from, OFFER_DOMAIN, &encode(offer), &sig.0).map_err(|_| SignalError::BadSignature)?;
        if offer.to != self.me || offer.from == self.me {
            return Err(SignalError::NotForMe);
        }
        if offer.festival != self.festival {
            return Err(SignalError::WrongFestival(offer.festival.clone()));
        }
        if offer.sent_at.abs_diff(now_ms) > MAX_OFFER_AGE_MS {
            return Err(SignalError::Stale);
        }
        if !self.seen.insert(offer.nonce) {
            return Err(SignalError::Replay);
        }
        self.order.push_back(offer.nonce);
        if self.order.len() > SEEN_NONCES {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        Ok(())
    }
}

/// Check an answer as the dialing side.
pub fn verify_answer(
    answer: &Answer,
    sig: &Sig,
    me: &PeerId,
    expected: &PeerId,
    nonce: &[u8; 16],
) -> Result<(), SignalError> {
    if answer.version != SIGNAL_VERSION {
        return Err(SignalError::Version(answer.version));
    }
    if answer.from != *expected {
        return Err(SignalError::WrongPeer { expected: *expected, got: answer.from });
    }
    identity::verify(&answer.from, ANSWER_DOMAIN, &encode(answer), &sig.0).map_err(|_| SignalError::BadSignature)?;
    if answer.to != *me || answer.nonce != *nonce {
        return Err(SignalError::NotForMe);
    }
    Ok(())
}

pub async fn write_msg<W: AsyncWrite + Unpin>(w: &mut W, msg: &SignalMsg) -> Result<(), SignalError> {
    let bytes = encode(msg);
    if bytes.len() > MAX_SIGNAL_BYTES {
        return Err(SignalError::TooLarge(bytes.len()));
    }
    let io = async {
        w.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
        w.write_all(&bytes).await?;
        w.flush().await
    };
    tokio::time::timeout(SIGNAL_IO_TIMEOUT, io).await.map_err(|_| SignalError::Timeout(SIGNAL_IO_TIMEOUT))??;
    Ok(())
}

pub async fn read_msg<R: AsyncRead + Unpin>(r: &mut R) -> Result<SignalMsg, SignalError> {
    let io = async {
        let mut len = [0u8; 4];
        r.read_exact(&mut len).await?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_SIGNAL_BYTES {
            return Err(SignalError::TooLarge(len));
        }
        let mut buf = vec![0u8; len];
        r.read_exact(&mut buf).await?;
        match postcard::take_from_bytes::<SignalMsg>(&buf) {
            Ok((msg, [])) => Ok(msg),
            _ => Err(SignalError::Malformed),
        }
    };
    tokio::time::timeout(SIGNAL_IO_TIMEOUT, io).await.map_err(|_| SignalError::Timeout(SIGNAL_IO_TIMEOUT))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::{OsRng, RngCore};

    fn offer(from: &Identity, to: PeerId, now: u64) -> Offer {
        let mut nonce = [0; 16];
        OsRng.fill_bytes(&mut nonce);
        Offer { version: 1, festival: "fest".into(), from: from.peer_id(), to, nonce, sent_at: now, sdp: "v=0".into() }
    }

    #[test]
    fn offers_are_verified_once_and_only_for_us() {
        let (a, b, c) =
            (Identity::generate(&mut OsRng), Identity::generate(&mut OsRng), Identity::generate(&mut OsRng));
        let mut check = OfferCheck::new(b.peer_id(), "fest".into());
        let o = offer(&a, b.peer_id(), 1_000_000);
        let SignalMsg::Offer { offer: o, sig } = o.sign(&a) else { unreachable!() };
        check.verify(&o, &sig, 1_000_000).unwrap();
        assert!(matches!(check.verify(&o, &sig, 1_000_000), Err(SignalError::Replay)));

        let mut forged = o.clone();
        forged.nonce[0] ^= 1;
        forged.sdp = "v=0 evil".into();
        assert!(matches!(check.verify(&forged, &sig, 1_000_000), Err(SignalError::BadSignature)));

        let SignalMsg::Offer { offer: to_c, sig } = offer(&a, c.peer_id(), 1_000_000).sign(&a) else { unreachable!() };
        assert!(matches!(check.verify(&to_c, &sig, 1_000_000), Err(SignalError::NotForMe)));

        let SignalMsg::Offer { offer: old, sig } = offer(&a, b.peer_id(), 1).sign(&a) else { unreachable!() };
        assert!(matches!(check.verify(&old, &sig, 1_000_000_000), Err(SignalError::Stale)));

        let mut other = offer(&a, b.peer_id(), 1_000_000);
        other.festival = "other".into();
        let SignalMsg::Offer { offer: other, sig } = other.sign(&a) else { unreachable!() };
        assert!(matches!(check.verify(&other, &sig, 1_000_000), Err(SignalError::WrongFestival(_))));
    }

    #[test]
    fn answers_must_come_from_the_expected_peer_for_our_nonce() {
        let (a, b, c) =
            (Identity::generate(&mut OsRng), Identity::generate(&mut OsRng), Identity::generate(&mut OsRng));
        let nonce = [7; 16];
        let ans = Answer { version: 1, from: b.peer_id(), to: a.peer_id(), nonce, sdp: "v=0".into() };
        let SignalMsg::Answer { answer, sig } = ans.clone().sign(&b) else { unreachable!() };
        verify_answer(&answer, &sig, &a.peer_id(), &b.peer_id(), &nonce).unwrap();
        assert!(matches!(
            verify_answer(&answer, &sig, &a.peer_id(), &b.peer_id(), &[8; 16]),
            Err(SignalError::NotForMe)
        ));
        // C answers in B's place: caught either as the wrong peer or a bad signature.
        let SignalMsg::Answer { answer, sig } = Answer { from: c.peer_id(), ..ans.clone() }.sign(&c) else {
            unreachable!()
        };
        assert!(matches!(
            verify_answer(&answer, &sig, &a.peer_id(), &b.peer_id(), &nonce),
            Err(SignalError::WrongPeer { .. })
        ));
        let SignalMsg::Answer { answer, sig } = ans.sign(&c) else { unreachable!() };
        assert!(matches!(
            verify_answer(&answer, &sig, &a.peer_id(), &b.peer_id(), &nonce),
            Err(SignalError::BadSignature)
        ));
    }

    #[tokio::test]
    async fn framing_round_trips_and_refuses_garbage() {
        let a = Identity::generate(&mut OsRng);
        let msg = offer(&a, a.peer_id(), 5).sign(&a);
        let (mut x, mut y) = tokio::io::duplex(64 * 1024);
        write_msg(&mut x, &msg).await.unwrap();
        assert_eq!(read_msg(&mut y).await.unwrap(), msg);

        x.write_all(&(u32::MAX).to_be_bytes()).await.unwrap();
        assert!(matches!(read_msg(&mut y).await, Err(SignalError::TooLarge(_))));
        let (mut x, mut y) = tokio::io::duplex(1024);
        x.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await.unwrap();
        assert!(matches!(read_msg(&mut y).await, Err(SignalError::Malformed)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out() {
        let (_x, mut y) = tokio::io::duplex(1024);
        assert!(matches!(read_msg(&mut y).await, Err(SignalError::Timeout(_))));
    }
}
