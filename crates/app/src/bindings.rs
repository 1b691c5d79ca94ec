//! TypeScript declarations for the UI, generated from the Rust types with
//! ts-rs: one file per type in `ui/src/bindings/`, never written by hand.
//! `tests/bindings.rs` fails when the committed files differ from what the
//! types say; `scripts/bindings` (or `FESTIVAL_WRITE_BINDINGS=1 cargo test
//! -p festival-app --test bindings`) writes them.

use std::path::Path;

use festival_core::MessageId;
use festival_node::runtime::{
    GroupView, HistoryPage, NodeEvent, PeerView, PersonChoiceView, RoomView, SearchResults, Status,
};
use ts_rs::{Config, ExportError, TS};

use crate::{AppError, AppState, MyCode, Notification, Settings};

/// Where the bindings live, relative to the repository root.
pub const BINDINGS_DIR: &str = "ui/src/bindings";

/// Write the declarations of every type a command takes or returns, and of
/// everything they refer to, into `dir`. Integers are plain `number`s: every
/// count and millisecond timestamp the UI sees is far below 2^53.
pub fn export(dir: &Path) -> Result<(), ExportError> {
    let cfg = Config::new().with_out_dir(dir).with_large_int("number");
    AppState::export_all(&cfg)?;
    AppError::export_all(&cfg)?;
    MyCode::export_all(&cfg)?;
    Settings::export_all(&cfg)?;
    Status::export_all(&cfg)?;
    RoomView::export_all(&cfg)?;
    HistoryPage::export_all(&cfg)?;
    PeerView::export_all(&cfg)?;
    PersonChoiceView::export_all(&cfg)?;
    SearchResults::export_all(&cfg)?;
    GroupView::export_all(&cfg)?;
    Notification::export_all(&cfg)?;
    NodeEvent::export_all(&cfg)?;
    MessageId::export_all(&cfg)?;
    write_index(dir)
}

/// `index.ts`: every type from one import (`import type { X } from "./bindings"`).
fn write_index(dir: &Path) -> Result<(), ExportError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".ts")).map(str::to_owned))
        .filter(|n| n != "index")
        .collect();
    names.sort();
    let mut out = String::from("// Generated with the files beside it (festival_app::bindings). Do not edit.\n");
    for n in names {
        out.push_str(&format!("export type {{ {n} }} from \"./{n}\";\n"));
    }
    std::fs::write(dir.join("index.ts"), out)?;
    Ok(())
}
