//! festival-app: the backend of the Festival Chat desktop app. Each Tauri
//! command of the app (the root package, `src-tauri/`) is a thin wrapper
//! around one method of [`App`]; nothing here depends on Tauri, so all of it
//! is tested without a window.
//!
//! # Layout
//! - [`app`]: [`App`], one method per command; owns the settings, the running
//!   `NodeHandle` (restarted when settings need it) and an event bus that
//!   survives restarts.
//! - [`settings`]: [`Settings`], their validation and their JSON file.
//! - [`contact`]: contact codes (`festival:<hex>`) and their QR code.
//! - [`notify`]: which events raise a desktop notification, and how few.
//! - [`error`]: [`AppError`] `{ code, message }` and the mapping from node
//!   errors.
//! - [`bindings`]: the TypeScript declarations of every type the UI sees,
//!   generated with ts-rs into `ui/src/bindings/`.

pub mod app;
pub mod bindings;
pub mod contact;
pub mod error;
pub mod notify;
pub mod settings;

pub use app::{App, AppOptions, AppState};
pub use contact::MyCode;
pub use error::{AppError, ErrorCode};
pub use notify::{Notification, NotifyKind};
pub use settings::Settings;
