//! A minimal STUN (RFC 5389) binding codec: what a node needs to learn its
//! server-reflexive address from a relay, and what the relay needs to answer
//! (the node's query over a socket is `festival_node::relay::stun::query`).
//!
//! Why our own and not str0m's: str0m parses STUN as ICE uses it, and refuses
//! a binding request without USERNAME, PRIORITY and MESSAGE-INTEGRITY, which
//! a plain "what is my address" query does not carry. The binding exchange
//! is 20 header bytes and one attribute; the RFC 5769 test vectors below pin
//! the encoding.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The fixed magic cookie of RFC 5389.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER: usize = 20;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// Largest STUN message we read: a binding request or response is far
/// smaller, and this bounds the work a stray datagram can cause.
pub const MAX_STUN_BYTES: usize = 548;

pub type TransactionId = [u8; 12];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    #[error("not a STUN message")]
    NotStun,
    #[error("malformed STUN message")]
    Malformed,
    #[error("not a binding request")]
    NotBindingRequest,
    #[error("not a binding success for our transaction")]
    Unexpected,
    #[error("no mapped address in the response")]
    NoAddress,
    #[error("no STUN answer within {0:?}")]
    Timeout(Duration),
    #[error("STUN socket: {0}")]
    Io(String),
}

/// A binding request: header only (no attributes are needed).
pub fn binding_request(tid: &TransactionId) -> [u8; HEADER] {
    let mut b = [0u8; HEADER];
    b[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    b[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    b[8..20].copy_from_slice(tid);
    b
}

/// A parsed message: type, transaction id, attributes (type, value).
struct Parsed<'a> {
    typ: u16,
    tid: TransactionId,
    attrs: Vec<(u16, &'a [u8])>,
}

/// Split a message into type, transaction id and attributes, checking the
/// header: top two bits zero, magic cookie, length = what follows, a
/// multiple of 4, and attributes that tile the body exactly.
fn parse(buf: &[u8]) -> Result<Parsed<'_>, StunError> {
    if buf.len() < HEADER || buf[0] & 0xC0 != 0 || buf[4..8] != MAGIC_COOKIE.to_be_bytes() {
        return Err(StunError::NotStun);
    }
    if buf.len() > MAX_STUN_BYTES {
        return Err(StunError::Malformed);
    }
    let typ = u16::from_be_bytes([buf[0], buf[1]]);
    let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    if !len.is_multiple_of(4) || len != buf.len() - HEADER {
        return Err(StunError::Malformed);
    }
    let tid: TransactionId = buf[8..20].try_into().expect("12 bytes");
    let mut attrs = Vec::new();
    let mut rest = &buf[HEADER..];
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(StunError::Malformed);
        }
        let t = u16::from_be_bytes([rest[0], rest[1]]);
        let l = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        let padded = l.div_ceil(4) * 4;
        if rest.len() < 4 + padded {
            return Err(StunError::Malformed);
        }
        attrs.push((t, &rest[4..4 + l]));
        rest = &rest[4 + padded..];
    }
    Ok(Parsed { typ, tid, attrs })
}

/// The transaction id of a well-formed binding request. Attributes are
/// checked for shape and otherwise ignored: a reflexive-address query needs
/// none, and answering one we do not understand costs nothing.
pub fn parse_binding_request(buf: &[u8]) -> Result<TransactionId, StunError> {
    let p = parse(buf)?;
    if p.typ != BINDING_REQUEST {
        return Err(StunError::NotBindingRequest);
    }
    Ok(p.tid)
}

/// A binding success response telling the requester `mapped`, its address
/// as the server saw it, in XOR-MAPPED-ADDRESS.
pub fn binding_success(tid: &TransactionId, mapped: SocketAddr) -> Vec<u8> {
    let value = xor_address(tid, mapped);
    let mut b = Vec::with_capacity(HEADER + 4 + value.len());
    b.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
    b.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
    b.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    b.extend_from_slice(tid);
    b.extend_from_slice(&ATTR_XOR_MAPPED_ADDRESS.to_be_bytes());
    b.extend_from_slice(&(value.len() as u16).to_be_bytes());
    b.extend_from_slice(&value);
    b
}

/// The reflexive address in a binding success for transaction `tid`
/// (XOR-MAPPED-ADDRESS, or the older MAPPED-ADDRESS if that is all there is).
pub fn parse_binding_success(buf: &[u8], tid: &TransactionId) -> Result<SocketAddr, StunError> {
    let Parsed { typ, tid: got, attrs } = parse(buf)?;
    if typ != BINDING_SUCCESS || got != *tid {
        return Err(StunError::Unexpected);
    }
    if let Some((_, v)) = attrs.iter().find(|(t, _)| *t == ATTR_XOR_MAPPED_ADDRESS) {
        return unxor_address(tid, v);
    }
    if let Some((_, v)) = attrs.iter().find(|(t, _)| *t == ATTR_MAPPED_ADDRESS) {
        return plain_address(v);
    }
    Err(StunError::NoAddress)
}

fn xor_address(tid: &TransactionId, addr: SocketAddr) -> Vec<u8> {
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let mut v = vec![0u8];
    match addr.ip() {
        IpAddr::V4(ip) => {
            v.push(0x01);
            v.extend_from_slice(&port.to_be_bytes());
            v.extend_from_slice(&(u32::from(ip) ^ MAGIC_COOKIE).to_be_bytes());
        }
        IpAddr::V6(ip) => {
            v.push(0x02);
            v.extend_from_slice(&port.to_be_bytes());
            let key = xor_key(tid);
            v.extend(ip.octets().iter().zip(key).map(|(a, k)| a ^ k));
        }
    }
    v
}

fn xor_key(tid: &TransactionId) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    key[4..].copy_from_slice(tid);
    key
}

fn unxor_address(tid: &TransactionId, v: &[u8]) -> Result<SocketAddr, StunError> {
    let plain = plain_address(v)?;
    let port = plain.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match plain.ip() {
        IpAddr::V4(ip) => IpAddr::V4(Ipv4Addr::from(u32::from(ip) ^ MAGIC_COOKIE)),
        IpAddr::V6(ip) => {
            let mut o = ip.octets();
            o.iter_mut().zip(xor_key(tid)).for_each(|(a, k)| *a ^= k);
            IpAddr::V6(Ipv6Addr::from(o))
        }
    };
    Ok(SocketAddr::new(ip, port))
}

fn plain_address(v: &[u8]) -> Result<SocketAddr, StunError> {
    if v.len() < 4 {
        return Err(StunError::Malformed);
    }
    let port = u16::from_be_bytes([v[2], v[3]]);
    let ip = match (v[1], v.len()) {
        (0x01, 8) => IpAddr::V4(Ipv4Addr::new(v[4], v[5], v[6], v[7])),
        (0x02, 20) => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&v[4..20]).expect("16 bytes"))),
        _ => return Err(StunError::Malformed),
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 section 2.2 and 2.3: transaction id and mapped addresses.
    const TID: TransactionId = [0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae];

    #[test]
    fn xor_mapped_address_matches_rfc_5769() {
        let v4: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let msg = binding_success(&TID, v4);
        assert_eq!(&msg[20..], &[0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43]);
        assert_eq!(parse_binding_success(&msg, &TID), Ok(v4));

        let v6: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853".parse().unwrap();
        let msg = binding_success(&TID, v6);
        #[rustfmt::skip]
        let expected = [
            0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47,
            0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79,
            0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
        ];
        assert_eq!(&msg[20..], &expected);
        assert_eq!(parse_binding_success(&msg, &TID), Ok(v6));
    }

    #[test]
    fn requests_round_trip_and_garbage_is_refused() {
        let req = binding_request(&TID);
        assert_eq!(parse_binding_request(&req), Ok(TID));
        // The RFC 5769 sample request (with ICE attributes) parses too.
        let rfc_request = hex_bytes(
            "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff\
             80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b57\
             1a280280004e57a3bcf",
        );
        assert_eq!(parse_binding_request(&rfc_request), Ok(TID));

        assert_eq!(parse_binding_request(b"hello, world, this is no stun"), Err(StunError::NotStun));
        let mut bad_len = req;
        bad_len[3] = 4;
        assert_eq!(parse_binding_request(&bad_len), Err(StunError::Malformed));
        let success = binding_success(&TID, "10.0.0.1:9".parse().unwrap());
        assert_eq!(parse_binding_request(&success), Err(StunError::NotBindingRequest));
        assert_eq!(parse_binding_success(&success, &[0; 12]), Err(StunError::Unexpected));
        // An attribute running past the end.
        let mut cut = success.clone();
        cut[23] = 0x40;
        assert_eq!(parse_binding_success(&cut, &TID), Err(StunError::Malformed));
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }
}
