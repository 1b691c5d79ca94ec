//! Several messages in one data-channel message.
//!
//! Every SCTP user message costs its own chunk, SACK bookkeeping and DTLS
//! record, so a stream of 200-byte frames sent one per SCTP message is
//! bounded by per-message overhead (about 9-19k msgs/s through the node
//! here) long before bandwidth. The endpoint therefore packs the messages
//! queued on a connection since its last poll into one SCTP message of up to
//! [`BUNDLE_BYTES`], each record prefixed with its length:
//!
//! ```text
//! bundle  = 1*record
//! record  = length (u32, big-endian, 1 ..= max message size) || bytes
//! ```
//!
//! A message is never split across bundles, and one larger than
//! [`BUNDLE_BYTES`] travels alone in its own bundle. Packing only takes what
//! is already queued: a lone message leaves at the next poll, as before, so
//! latency does not change.

/// Bytes of the length prefix of each record.
pub const HEADER_BYTES: usize = 4;

/// Target size of a bundle: records are added while the bundle stays within
/// it. 16 KiB is the message size every WebRTC stack interoperates with, and
/// already ~80 records of 200 bytes.
pub const BUNDLE_BYTES: usize = 16 * 1024;

/// Why a received data-channel message is not a valid bundle. The whole
/// message is dropped (and counted): a peer that frames wrongly is broken or
/// hostile, and guessing where its next record starts would only feed the
/// layers above with garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("empty bundle")]
    Empty,
    #[error("record header cut short at byte {at}")]
    TruncatedHeader { at: usize },
    #[error("empty record at byte {at}")]
    EmptyRecord { at: usize },
    #[error("record of {len} bytes above the limit of {max}")]
    Oversized { len: usize, max: usize },
    #[error("record of {len} bytes at byte {at} runs past the end")]
    Truncated { at: usize, len: usize },
}

/// Whether a record of `len` bytes may join a bundle of `bundle_len` bytes
/// when the peer takes messages of up to `peer_max` bytes. An empty bundle
/// takes any record (the sender checks it against `peer_max` first).
pub fn fits(bundle_len: usize, len: usize, peer_max: usize) -> bool {
    bundle_len == 0 || bundle_len + HEADER_BYTES + len <= BUNDLE_BYTES.min(peer_max)
}

/// The `a=max-message-size` of an SDP: the largest data-channel message its
/// author takes. RFC 8841: 65,536 when absent, and 0 means no limit.
pub fn sdp_max_message_size(sdp: &str) -> usize {
    const DEFAULT: usize = 65_536;
    let value = sdp.lines().find_map(|l| l.trim_end().strip_prefix("a=max-message-size:"));
    match value.map(|v| v.trim().parse::<u64>()) {
        None => DEFAULT,
        Some(Ok(0)) => usize::MAX,
        Some(Ok(n)) => usize::try_from(n).unwrap_or(usize::MAX),
        Some(Err(_)) => DEFAULT,
    }
}

/// Appends one record. The caller checks `1 <= msg.len() <= u32::MAX`.
pub fn push(bundle: &mut Vec<u8>, msg: &[u8]) {
    let len = u32::try_from(msg.len()).expect("records are bounded by the max message size");
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(msg);
}

/// The records of a received bundle, in order; each at most `max` bytes.
pub fn split(bytes: &[u8], max: usize) -> Result<Vec<Vec<u8>>, BundleError> {
    if bytes.is_empty() {
        return Err(BundleError::Empty);
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let header: [u8; HEADER_BYTES] = bytes
            .get(at..at + HEADER_BYTES)
            .and_then(|h| h.try_into().ok())
            .ok_or(BundleError::TruncatedHeader { at })?;
        let len = u32::from_be_bytes(header) as usize;
        if len == 0 {
            return Err(BundleError::EmptyRecord { at });
        }
        if len > max {
            return Err(BundleError::Oversized { len, max });
        }
        let start = at + HEADER_BYTES;
        let record = bytes.get(start..start + len).ok_or(BundleError::Truncated { at, len })?;
        out.push(record.to_vec());
        at = start + len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn records_come_back_in_order() {
        let mut b = Vec::new();
        push(&mut b, b"one");
        push(&mut b, &[7; 300]);
        push(&mut b, b"x");
        assert_eq!(split(&b, 1000).unwrap(), vec![b"one".to_vec(), vec![7; 300], b"x".to_vec()]);
    }

    #[test]
    fn bad_framing_is_refused_whole() {
        assert_eq!(split(&[], 10), Err(BundleError::Empty));
        assert_eq!(split(&[0, 0, 0], 10), Err(BundleError::TruncatedHeader { at: 0 }));
        assert_eq!(split(&[0, 0, 0, 0], 10), Err(BundleError::EmptyRecord { at: 0 }));
        assert_eq!(split(&[0, 0, 0, 11], 10), Err(BundleError::Oversized { len: 11, max: 10 }));
        assert_eq!(split(&[0, 0, 0, 2, 9], 10), Err(BundleError::Truncated { at: 0, len: 2 }));
        assert_eq!(split(&[0, 0, 0, 1, 9, 0, 0], 10), Err(BundleError::TruncatedHeader { at: 5 }));
    }

    #[test]
    fn a_bundle_stays_within_its_target_but_a_large_record_travels_alone() {
        let any = usize::MAX;
        assert!(fits(0, BUNDLE_BYTES * 4, any));
        assert!(fits(100, BUNDLE_BYTES - 104, any));
        assert!(!fits(100, BUNDLE_BYTES - 103, any));
        assert!(!fits(100, 1000, 1000), "a peer with small messages gets small bundles");
    }

    #[test]
    fn the_peers_message_limit_comes_from_its_sdp() {
        assert_eq!(sdp_max_message_size("v=0\r\na=max-message-size:262148\r\n"), 262_148);
        assert_eq!(sdp_max_message_size("v=0\r\n"), 65_536);
        assert_eq!(sdp_max_message_size("a=max-message-size:0\r\n"), usize::MAX);
        assert_eq!(sdp_max_message_size("a=max-message-size:lots\r\n"), 65_536);
    }

    proptest! {
        #[test]
        fn split_inverts_push(msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..600), 1..40)) {
            let mut b = Vec::new();
            for m in &msgs {
                push(&mut b, m);
            }
            prop_assert_eq!(split(&b, 600).unwrap(), msgs);
        }

        #[test]
        fn split_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = split(&bytes, 16);
        }
    }
}
