//! Where a node keeps its data.

use std::path::PathBuf;

/// File name of the SQLite database inside a data dir.
pub const DB_FILE: &str = "festival.db";

/// The platform's data directory for Festival Chat's headless node
/// (`~/.local/share/festival-chat/node` on Linux), or `./festival-data` if the
/// platform has none (no home directory).
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("chat", "festival", "festival-chat")
        .map(|d| d.data_dir().join("node"))
        .unwrap_or_else(|| PathBuf::from("festival-data"))
}
