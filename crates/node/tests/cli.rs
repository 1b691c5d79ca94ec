//! The festival-node binary on a real data dir, as a person would use it
//! before any network exists: init, whoami, send, history.

use std::path::Path;
use std::process::{Command, Output};

fn node(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_festival-node"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("festival-node runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn init_whoami_send_history_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let init = node(dir.path(), &["init", "--name", "Ana"]);
    assert!(init.status.success(), "{}", stderr(&init));
    let who = node(dir.path(), &["whoami"]);
    assert!(who.status.success());
    let peer_line = stdout(&who).lines().find(|l| l.starts_with("peer id:")).unwrap().to_owned();
    assert_eq!(peer_line.split_whitespace().last().unwrap().len(), 64);
    assert!(stdout(&who).contains("name:        Ana"));
    assert!(stdout(&init).contains(&peer_line), "whoami and init agree on the PeerId");

    for text in ["doors open at 18:00", "meet at the ferris wheel"] {
        let s = node(dir.path(), &["send", "--room", "Main Stage", text]);
        assert!(s.status.success(), "{}", stderr(&s));
        assert!(stdout(&s).starts_with("saved "));
    }
    let h = node(dir.path(), &["history", "--room", "main-stage"]);
    let lines: Vec<String> = stdout(&h).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].ends_with("you: doors open at 18:00"));
    assert!(lines[1].ends_with("you: meet at the ferris wheel"));
    // The festival room holds no text yet (the profile is not shown as a message).
    assert_eq!(stdout(&node(dir.path(), &["history"])).lines().count(), 0);
}

#[test]
fn bad_input_gets_a_clear_error_and_keeps_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let none = node(dir.path(), &["whoami"]);
    assert!(!none.status.success());
    assert!(stderr(&none).contains("festival-node init --name"), "{}", stderr(&none));

    assert!(node(dir.path(), &["init", "--name", "Ana"]).status.success());
    let before = stdout(&node(dir.path(), &["whoami"]));
    let again = node(dir.path(), &["init", "--name", "Bob"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already set up as Ana"));
    assert_eq!(stdout(&node(dir.path(), &["whoami"])), before, "identity unchanged");

    let long = "a".repeat(4001);
    for (args, expect) in [
        (vec!["send", "   "], "text is empty"),
        (vec!["send", long.as_str()], "exceeds the 4000-byte limit"),
        (vec!["send", "--room", "dm", "hi"], "the room id `dm` is reserved"),
        (vec!["send", "--room", "announcements", "hi"], "the room id `announcements` is reserved"),
        (vec!["send", "--room", "!!!", "hi"], "invalid room"),
    ] {
        let o = node(dir.path(), &args);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(stderr(&o).contains(expect), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(stdout(&node(dir.path(), &["history"])).lines().count(), 0, "nothing half-sent");
}

#[cfg(unix)]
#[test]
fn the_data_dir_is_made_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("share/festival-chat/node");
    let init = node(&dir, &["init", "--name", "Ana"]);
    assert!(init.status.success(), "{}", stderr(&init));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "it holds the identity key");
    // A data dir someone made with `mkdir` (0755) is narrowed on next use.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(node(&dir, &["whoami"]).status.success());
    assert_eq!(mode(&dir), 0o700);
}

#[test]
fn a_relay_id_that_is_no_peer_id_stops_run_before_it_starts() {
    // Refused while reading the flags: no store opened, no socket.
    let dir = tempfile::tempdir().unwrap();
    // The last: 64 hex digits that are no public key.
    for bad in ["relay.example", "abcd", &"g".repeat(64), &"ab".repeat(32)] {
        let o = node(dir.path(), &["run", "--name", "Ana", "--relay", "ws://127.0.0.1:9", "--relay-id", bad]);
        assert!(!o.status.success(), "{bad:?} should fail");
        assert!(stderr(&o).contains("is not a relay id"), "{bad:?}: {}", stderr(&o));
    }
    assert!(!dir.path().join("festival.db").exists(), "nothing started");
}

#[test]
fn an_organiser_key_that_is_no_peer_id_stops_run_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["gate-crew", &"ab".repeat(32)] {
        let o = node(dir.path(), &["run", "--name", "Ana", "--organiser", bad]);
        assert!(!o.status.success(), "{bad:?} should fail");
        assert!(stderr(&o).contains("is not an organiser key"), "{bad:?}: {}", stderr(&o));
    }
    // `self` needs an identity to be, or a name to make one.
    let o = node(dir.path(), &["run", "--organiser", "self"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no identity yet"), "{}", stderr(&o));
}

#[test]
fn announce_saves_the_organisers_announcement_and_refuses_a_bad_end() {
    let dir = tempfile::tempdir().unwrap();
    assert!(node(dir.path(), &["init", "--name", "Gate Crew"]).status.success());
    for bad in ["tomorrow", "25:00", "0h", "2x"] {
        let o = node(dir.path(), &["announce", "--until", bad, "doors", "open"]);
        assert!(!o.status.success(), "{bad:?} should fail");
        assert!(stderr(&o).contains("is not an end time"), "{bad:?}: {}", stderr(&o));
    }
    // Within the festival's lifetime: a day's festival takes no two-day one.
    let o = node(dir.path(), &["announce", "--until", "2d", "--message-lifetime-hours", "24", "doors", "open"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("within the festival's message lifetime"), "{}", stderr(&o));
    for until in ["2h", "+45m", "23:30"] {
        let o = node(dir.path(), &["announce", "--until", until, "doors", "open"]);
        assert!(o.status.success(), "{until}: {}", stderr(&o));
        assert!(stdout(&o).starts_with("saved "), "{}", stdout(&o));
    }
}
