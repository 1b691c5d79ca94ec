//! webrtc adapter: in progress.
