//! Byte formats spoken over sockets (docs/protocol.md): nothing here opens
//! one.

pub mod relay;
pub mod signaling;
pub mod stun;
