//! Where a node keeps its data, and how that directory is made: readable by
//! its owner only, since it holds the device's identity key.

use std::io;
use std::path::{Path, PathBuf};

/// File name of the SQLite database inside a data dir.
pub const DB_FILE: &str = "festival.db";

/// Mode of a data dir on Unix: the owner only. Its database holds the
/// device's secret key and every message; others on a shared machine must
/// not list, read or replace its files.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// The platform's data directory for Festival Chat's headless node
/// (`~/.local/share/festival-chat/node` on Linux), or `./festival-data` if the
/// platform has none (no home directory).
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("chat", "festival", "festival-chat")
        .map(|d| d.data_dir().join("node"))
        .unwrap_or_else(|| PathBuf::from("festival-data"))
}

/// Make `dir` (and missing parents) with [`PRIVATE_DIR_MODE`]. An existing
/// directory that others may enter is narrowed to it too (a data dir made by
/// an older version, or by `mkdir`), unless it has the sticky bit: that is a
/// shared directory such as /tmp, which is left as it is (with a warning).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {
                let mode = meta.permissions().mode();
                if mode & 0o077 == 0 {
                    return Ok(());
                }
                if mode & 0o1000 != 0 {
                    tracing::warn!(dir = %dir.display(), mode = format!("{:o}", mode & 0o7777),
                        "data dir is a shared directory: others can see its file names; use a directory of its own");
                    return Ok(());
                }
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(PRIVATE_DIR_MODE))
            }
            Ok(_) => Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is not a directory", dir.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new().recursive(true).mode(PRIVATE_DIR_MODE).create(dir)
            }
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn data_dirs_are_made_and_narrowed_to_their_owner_but_shared_dirs_are_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let fresh = root.path().join("a/b/node");
        create_private_dir(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700, "parents made for it too");

        let old = root.path().join("old");
        std::fs::create_dir(&old).unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&old).unwrap();
        assert_eq!(mode(&old), 0o700);

        let shared = root.path().join("tmp");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        create_private_dir(&shared).unwrap();
        assert_eq!(mode(&shared), 0o1777);

        let file = root.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(create_private_dir(&file).is_err());
    }
}
