//! The TypeScript types the UI compiles against are exactly what the Rust
//! types say. Regenerate with `scripts/bindings` after changing a type.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use festival_app::bindings::{export, BINDINGS_DIR};

fn read_dir(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "ts") {
            out.insert(path.file_name().unwrap().into(), std::fs::read_to_string(&path).unwrap());
        }
    }
    out
}

#[test]
fn committed_typescript_bindings_match_the_rust_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let committed_dir = root.join(BINDINGS_DIR);
    let fresh = tempfile::tempdir().unwrap();
    export(fresh.path()).unwrap();
    let fresh = read_dir(fresh.path());
    assert!(fresh.contains_key(Path::new("NodeEvent.ts")) && fresh.contains_key(Path::new("AppError.ts")));

    if std::env::var_os("FESTIVAL_WRITE_BINDINGS").is_some() {
        std::fs::create_dir_all(&committed_dir).unwrap();
        for old in read_dir(&committed_dir).keys() {
            if !fresh.contains_key(old) {
                std::fs::remove_file(committed_dir.join(old)).unwrap();
            }
        }
        for (name, text) in &fresh {
            std::fs::write(committed_dir.join(name), text).unwrap();
        }
        return;
    }
    let committed = read_dir(&committed_dir);
    let stale: Vec<_> = fresh
        .iter()
        .filter(|(name, text)| committed.get(*name) != Some(*text))
        .map(|(name, _)| name.display().to_string())
        .chain(
            committed.keys().filter(|n| !fresh.contains_key(*n)).map(|n| format!("{} (no longer a type)", n.display())),
        )
        .collect();
    assert!(stale.is_empty(), "ui/src/bindings is out of date ({stale:?}): run scripts/bindings and commit the result");
}
