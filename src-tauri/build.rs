//! Tauri's build step: reads tauri.conf.json and capabilities/ at the
//! repository root (the package root) and declares the app's own commands,
//! so each needs an explicit `allow-<command>` in a capability. Keep this
//! list equal to the handler list in commands.rs (tests/commands.rs checks
//! that every command is reachable through the real capabilities).

const COMMANDS: &[&str] = &[
    "app_state",
    "onboard",
    "my_code",
    "rooms",
    "join_room",
    "history",
    "dm_history",
    "send",
    "send_dm",
    "mark_read",
    "peers",
    "mute",
    "block",
    "people_choices",
    "viewing",
    "search",
    "announcements",
    "verify",
    "status",
    "settings",
    "save_settings",
    "subscribe",
];

fn main() {
    let attrs = tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attrs) {
        panic!("tauri build step failed: {e:#}");
    }
}
