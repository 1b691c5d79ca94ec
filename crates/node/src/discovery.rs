//! discovery adapter: in progress.
