//! The commands as the UI calls them: through Tauri's IPC (mock runtime, the
//! app's real config and capabilities), JSON in, JSON or `{ code, message }`
//! out, over a real node. Starts a node, so it runs inside a private network
//! namespace (scripts/test).

use festival_app::AppOptions;
use festival_core::policy::PowerState;
use festival_node::runtime::PowerConfig;
use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody, InvokeResponseBody};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::WebviewWindow;

/// One mDNS daemon per process, and each test's node would see the others':
/// the tests take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// A real Ed25519 public key (RFC 8032, test 1): someone else's code.
const FRIEND: &str = "festival:d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

struct Shell {
    _turn: std::sync::MutexGuard<'static, ()>,
    _app: tauri::App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
    backend: festival_app::App,
    _dir: tempfile::TempDir,
}

fn shell() -> Shell {
    let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    festival_node::netns::require_private_netns();
    let dir = tempfile::tempdir().unwrap();
    let options = AppOptions { power: PowerConfig::Fixed(PowerState::Battery { percent: 15 }), ..Default::default() };
    let backend = festival_chat::start_backend(dir.path(), options).unwrap();
    let app = festival_chat::commands::register(mock_builder())
        .manage(backend.clone())
        .build(tauri::generate_context!())
        .expect("app builds with the real config");
    // The main window as tauri.conf.json describes it: its label is what the
    // capabilities grant the commands to.
    let config = app.config().app.windows[0].clone();
    let window = tauri::WebviewWindowBuilder::from_config(&app, &config).unwrap().build().expect("main window");
    Shell { _turn: turn, _app: app, window, backend, _dir: dir }
}

impl Shell {
    /// Invoke as the UI does; Ok(json) or Err({ code, message }).
    fn call(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        // The page the window shows (the dev server's URL in debug builds,
        // tauri://localhost in release): the app's own, local origin.
        self.call_from(self.window.url().unwrap(), cmd, args)
    }

    fn call_from(&self, url: tauri::Url, cmd: &str, args: Value) -> Result<Value, Value> {
        self.call_body(url, cmd, InvokeBody::Json(args)).map(|b| b.deserialize::<Value>().unwrap())
    }

    /// Invoke with any body (raw bytes, as `send_photo` takes); the
    /// response as it comes (raw bytes, as `photo` gives).
    fn call_body(&self, url: tauri::Url, cmd: &str, body: InvokeBody) -> Result<InvokeResponseBody, Value> {
        get_ipc_response(
            &self.window,
            InvokeRequest {
                cmd: cmd.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url,
                body,
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_owned(),
            },
        )
    }

    fn ok(&self, cmd: &str, args: Value) -> Value {
        self.call(cmd, args).unwrap_or_else(|e| panic!("{cmd} failed: {e}"))
    }

    /// The error code of a call that must fail.
    fn code(&self, cmd: &str, args: Value) -> String {
        let e = self.call(cmd, args).expect_err(&format!("{cmd} should fail"));
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{cmd}: error without a message: {e}");
        e["code"].as_str().unwrap_or_else(|| panic!("{cmd}: error without a code: {e}")).to_owned()
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        tauri::async_runtime::block_on(self.backend.shutdown());
    }
}

#[test]
fn first_start_picks_a_name_then_posts_and_pages_history() {
    let s = shell();
    let state = s.ok("app_state", json!({}));
    assert_eq!(state["onboarded"], false);
    assert_eq!(state["status"], Value::Null);
    assert_eq!(s.code("send", json!({"room": "festival", "text": "hi"})), "not_onboarded");
    assert_eq!(s.code("onboard", json!({"name": "   "})), "invalid_name");

    let status = s.ok("onboard", json!({"name": "Ana"}));
    assert_eq!(status["name"], "Ana");
    assert_eq!(status["festival"], "festival");
    assert_eq!(status["p2p"], true);
    assert_eq!(status["relay"], json!({"state": "not_configured"}));
    assert_eq!(status["power"]["battery"], 15);
    assert!(status["power"]["saving"].as_array().unwrap().contains(&json!({"kind": "no_relay_for_others"})));
    assert_eq!(s.code("onboard", json!({"name": "Ana again"})), "already_onboarded");
    assert_eq!(s.ok("app_state", json!({}))["onboarded"], true);

    let rooms = s.ok("rooms", json!({}));
    assert_eq!(rooms[0]["id"], "festival");
    let stage = s.ok("join_room", json!({"name": "Main Stage"}));
    assert_eq!((stage["id"].as_str(), stage["name"].as_str()), (Some("main-stage"), Some("Main Stage")));
    assert_eq!(s.code("join_room", json!({"name": "!!!"})), "invalid_room");

    // Alone on the network: saved, and the UI can say why it waits.
    let m = s.ok("send", json!({"room": "main-stage", "text": "doors at 18:00"}));
    assert_eq!(m["delivery"]["state"], "saved");
    assert_eq!(m["delivery"]["waiting"], "no_one_nearby");
    // A room message has no "not delivered yet" clock (receipts come only
    // from small rooms); a DM does.
    assert_eq!(
        (m["delivery"]["overdue_at"].clone(), m["delivery"]["not_delivered"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(m["mine"], true);
    assert_eq!(m["body"], json!({"type": "text", "text": "doors at 18:00"}));
    assert_eq!(s.code("send", json!({"room": "main-stage", "text": " \n "})), "empty_message");
    assert_eq!(s.code("send", json!({"room": "main-stage", "text": "x".repeat(5000)})), "message_too_long");
    assert_eq!(s.code("send", json!({"room": "camp-b12", "text": "not joined"})), "not_joined");

    for i in 0..4 {
        s.ok("send", json!({"room": "main-stage", "text": format!("line {i}")}));
    }
    let page = s.ok("history", json!({"room": "main-stage", "before": null, "limit": 3}));
    let texts = |p: &Value| -> Vec<String> {
        p["messages"].as_array().unwrap().iter().map(|m| m["body"]["text"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(texts(&page), ["line 1", "line 2", "line 3"]);
    let older = s.ok("history", json!({"room": "main-stage", "before": page["next"], "limit": 3}));
    assert_eq!(texts(&older), ["doors at 18:00", "line 0"]);
    assert_eq!(older["next"], Value::Null);
    let ids: Vec<Value> = page["messages"].as_array().unwrap().iter().map(|m| m["id"].clone()).collect();
    s.ok("mark_read", json!({"room": "main-stage", "ids": ids}));
}

#[test]
fn the_ui_calls_exactly_the_commands_of_the_one_list() {
    // command_list.rs names each command once; the UI's api.ts is the one
    // place the page calls them, each by `call("<name>"`.
    let api = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/src/api.ts")).unwrap();
    let mut called: Vec<&str> = api.split("call(\"").skip(1).filter_map(|rest| rest.split('"').next()).collect();
    called.sort_unstable();
    called.dedup();
    let mut listed = festival_chat::commands::COMMANDS.to_vec();
    listed.sort_unstable();
    assert_eq!(called, listed, "ui/src/api.ts and src-tauri/command_list.rs disagree");
}

#[test]
fn every_command_of_the_list_is_granted_to_the_app_page() {
    let s = shell();
    // Called with no arguments: a command that is granted answers (with a
    // typed error, or refuses the missing arguments); one that is not is
    // refused by the ACL before it runs.
    for cmd in festival_chat::commands::COMMANDS {
        if let Err(e) = s.call(cmd, json!({})) {
            assert!(!e.as_str().is_some_and(|m| m.contains("not allowed")), "{cmd} is not granted: {e}");
        }
    }
}

#[test]
fn capabilities_grant_the_commands_to_the_app_page_only() {
    let s = shell();
    assert_eq!(s.ok("app_state", json!({}))["onboarded"], false);
    let remote = s.call_from("https://evil.example/".parse().unwrap(), "app_state", json!({}));
    let refused = remote.expect_err("a remote page must not reach the commands");
    assert!(refused.as_str().is_some_and(|m| m.contains("not allowed")), "{refused}");
}

#[test]
fn core_apis_the_ui_does_not_use_are_refused_and_the_event_channel_needs_none() {
    let s = shell();
    // capabilities/main.json grants no `core:` permission: a script in the
    // page cannot reach Tauri's own plugins.
    for (cmd, args) in [
        ("plugin:event|listen", json!({"event": "tauri://focus", "target": {"kind": "Any"}, "handler": 7})),
        ("plugin:event|emit", json!({"event": "x", "payload": null})),
        ("plugin:app|version", json!({})),
        ("plugin:window|get_all_windows", json!({})),
        ("plugin:window|close", json!({"label": "main"})),
        ("plugin:webview|get_all_webviews", json!({})),
        ("plugin:path|resolve_directory", json!({"directory": 1})),
        // Notifications are raised by the Rust side only: a script in the
        // page cannot pop them up.
        ("plugin:notification|notify", json!({"options": {"title": "x", "body": "spam"}})),
        ("plugin:notification|request_permission", json!({})),
    ] {
        let refused = s.call(cmd, args).expect_err(cmd);
        assert!(refused.as_str().is_some_and(|m| m.contains("not allowed")), "{cmd}: {refused}");
    }
    // What the UI does use: `subscribe` with a Channel (a callback id).
    s.ok("onboard", json!({"name": "Dana"}));
    s.ok("subscribe", json!({"onEvent": "__CHANNEL__:42"}));
}

#[test]
fn meetups_are_posted_and_answered_and_bad_ones_are_typed_errors() {
    let s = shell();
    s.ok("onboard", json!({"name": "Cleo"}));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let at = now + 3_600_000;
    let card = s.ok("send_meetup", json!({"room": "festival", "place": "the big wheel", "at": at}));
    assert_eq!(card["body"]["type"], "meetup");
    assert_eq!(card["body"]["place"], "the big wheel");
    assert_eq!(card["body"]["at"], at);
    assert_eq!(card["body"]["until"], at + 30 * 60_000);
    assert_eq!((card["body"]["coming"].as_u64(), card["body"]["mine"].clone()), (Some(0), Value::Null));
    let answered = s.ok("answer_meetup", json!({"meetup": card["id"], "answer": "coming"}));
    assert_eq!(answered["id"], card["id"]);
    assert_eq!((answered["body"]["coming"].as_u64(), answered["body"]["mine"].as_str()), (Some(1), Some("coming")));
    assert_eq!(answered["body"]["people"][0]["me"], true);
    let changed = s.ok("answer_meetup", json!({"meetup": card["id"], "answer": "cant"}));
    assert_eq!((changed["body"]["coming"].as_u64(), changed["body"]["cant"].as_u64()), (Some(0), Some(1)));

    for (place, code) in
        [("  ", "invalid_place"), ("gate\nB", "invalid_place"), (&"x".repeat(201)[..], "invalid_place")]
    {
        assert_eq!(s.code("send_meetup", json!({"room": "festival", "place": place, "at": at})), code, "{place:?}");
    }
    assert_eq!(
        s.code("send_meetup", json!({"room": "festival", "place": "gate", "at": now - 60_000})),
        "invalid_meetup_time"
    );
    assert_eq!(
        s.code("send_meetup", json!({"room": "festival", "place": "gate", "at": now + 30 * 86_400_000u64})),
        "invalid_meetup_time"
    );
    assert_eq!(s.code("send_meetup", json!({"room": "camp-b12", "place": "gate", "at": at})), "not_joined");
    let unknown = "ab".repeat(32);
    assert_eq!(s.code("answer_meetup", json!({"meetup": unknown, "answer": "coming"})), "no_such_meetup");
    let text = s.ok("send", json!({"room": "festival", "text": "not a meet-up"}));
    assert_eq!(s.code("answer_meetup", json!({"meetup": text["id"], "answer": "coming"})), "no_such_meetup");
    // Malformed arguments are refused before the command runs.
    assert!(s.call("answer_meetup", json!({"meetup": card["id"], "answer": "maybe"})).is_err());
    assert!(s.call("answer_meetup", json!({"meetup": "not-an-id", "answer": "coming"})).is_err());
    // The card is in history with its tally.
    let page = s.ok("history", json!({"room": "festival", "before": null, "limit": 10}));
    let shown =
        page["messages"].as_array().unwrap().iter().find(|m| m["id"] == card["id"]).expect("in history").clone();
    assert_eq!(shown["body"]["cant"], 1);
}

/// `send_photo`'s raw body, as ui/src/api.ts writes it.
fn photo_body(room: &str, caption: &str, picture: &[u8]) -> InvokeBody {
    let header = serde_json::to_vec(&json!({"room": room, "caption": caption})).unwrap();
    let mut body = (header.len() as u32).to_le_bytes().to_vec();
    body.extend_from_slice(&header);
    body.extend_from_slice(picture);
    InvokeBody::Raw(body)
}

#[test]
fn photos_are_sent_as_raw_bytes_read_back_whole_and_bad_ones_are_typed_errors() {
    let s = shell();
    s.ok("onboard", json!({"name": "Cleo"}));
    let url = s.window.url().unwrap();
    let img = image::RgbImage::from_fn(1800, 900, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut png, image::ImageFormat::Png).unwrap();
    let sent = s.call_body(url.clone(), "send_photo", photo_body("festival", "the gate 🎪", png.get_ref())).unwrap();
    let sent: Value = sent.deserialize().unwrap();
    assert_eq!(sent["body"]["type"], "photo");
    assert_eq!((sent["body"]["width"].as_u64(), sent["body"]["height"].as_u64()), (Some(1600), Some(800)));
    assert_eq!(
        (sent["body"]["caption"].as_str(), sent["body"]["complete"].as_bool()),
        (Some("the gate 🎪"), Some(true))
    );
    assert!(sent["body"]["thumb"].as_str().unwrap().starts_with("data:image/jpeg;base64,/9j/"));
    // The photo comes back as raw JPEG bytes.
    match s.call_body(url.clone(), "photo", InvokeBody::Json(json!({"id": sent["id"]}))).unwrap() {
        InvokeResponseBody::Raw(jpeg) => {
            assert_eq!(jpeg.len() as u64, sent["body"]["bytes"].as_u64().unwrap());
            assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]));
        }
        other => panic!("raw bytes expected, got {other:?}"),
    }
    let code = |cmd: &str, body: InvokeBody| {
        let e = s.call_body(url.clone(), cmd, body).expect_err("should fail");
        e["code"].as_str().unwrap().to_owned()
    };
    // A GIF cut short after its signature; one claiming 25,120 pixels a side.
    assert_eq!(code("send_photo", photo_body("festival", "", b"GIF87a\x01")), "not_a_photo");
    assert_eq!(code("send_photo", photo_body("festival", "", b"GIF87a but not really")), "photo_too_large");
    assert_eq!(code("send_photo", photo_body("festival", "", b"plain text")), "not_a_photo");
    assert_eq!(code("send_photo", photo_body("camp-b12", "", png.get_ref())), "not_joined");
    assert_eq!(code("send_photo", photo_body("festival", &"x".repeat(1001), png.get_ref())), "message_too_long");
    assert_eq!(code("send_photo", InvokeBody::Raw(vec![200, 0, 0, 0, b'{'])), "not_a_photo");
    let huge = photo_body("festival", "", &vec![0; festival_node::photo::MAX_INPUT_BYTES + 64 * 1024]);
    assert_eq!(code("send_photo", huge), "photo_too_large");
    assert_eq!(code("send_photo", InvokeBody::Json(json!({"room": "festival"}))), "not_a_photo");
    assert_eq!(code("photo", InvokeBody::Json(json!({"id": "ab".repeat(32)}))), "no_such_photo");
    let text = s.ok("send", json!({"room": "festival", "text": "not a photo"}));
    assert_eq!(code("photo", InvokeBody::Json(json!({"id": text["id"]}))), "no_such_photo");
    // In history as one message.
    let page = s.ok("history", json!({"room": "festival", "before": null, "limit": 10}));
    let kinds: Vec<&str> =
        page["messages"].as_array().unwrap().iter().map(|m| m["body"]["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["photo", "text"]);
}

#[test]
fn private_groups_are_made_posted_to_and_left_and_bad_ones_are_typed_errors() {
    let s = shell();
    s.ok("onboard", json!({"name": "Gia"}));
    let friend = FRIEND.to_owned();
    assert_eq!(s.code("create_group", json!({"name": "  ", "members": [friend]})), "invalid_group_name");
    assert_eq!(s.code("create_group", json!({"name": "Crew", "members": []})), "invalid_group_members");
    assert_eq!(s.code("create_group", json!({"name": "Crew", "members": ["nobody"]})), "invalid_peer");
    let g = s.ok("create_group", json!({"name": "Crew", "members": [friend]}));
    assert_eq!((g["name"].as_str(), g["left"].as_bool()), (Some("Crew"), Some(false)));
    assert_eq!(g["members"].as_array().unwrap().len(), 2);
    assert_eq!(g["members"][0]["me"], true, "me first");
    let id = g["id"].as_str().unwrap().to_owned();
    assert_eq!(s.ok("groups", json!({}))[0]["id"], id.as_str());
    let m = s.ok("send_group", json!({"group": id, "text": "tent is up"}));
    assert_eq!(m["body"], json!({"type": "group", "group": id, "name": "Crew", "text": "tent is up"}));
    assert_eq!(m["delivery"]["state"], "saved");
    let page = s.ok("group_history", json!({"group": id, "before": null, "limit": 10}));
    let kinds: Vec<&str> =
        page["messages"].as_array().unwrap().iter().map(|m| m["body"]["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["group_members", "group"]);
    assert_eq!(s.code("send_group", json!({"group": id, "text": " "})), "empty_message");
    assert_eq!(s.code("send_group", json!({"group": "ab".repeat(16), "text": "hi"})), "not_in_group");
    assert_eq!(s.code("send_group", json!({"group": "not hex", "text": "hi"})), "not_in_group");
    s.ok("viewing", json!({"conversation": format!("group:{id}")}));
    s.ok("mute", json!({"conversation": format!("group:{id}"), "muted": true}));
    assert_eq!(s.ok("groups", json!({}))[0]["muted"], true);
    assert_eq!(
        s.code("mute", json!({"conversation": format!("group:{}", "cd".repeat(16)), "muted": true})),
        "not_in_group"
    );
    let left = s.ok("leave_group", json!({"group": id}));
    assert_eq!(left["left"], true);
    assert_eq!(s.code("send_group", json!({"group": id, "text": "still here?"})), "not_in_group");
    assert_eq!(s.code("invite_to_group", json!({"group": id, "members": [FRIEND]})), "not_in_group");
}

#[test]
fn codes_verify_people_and_bad_input_is_a_typed_error() {
    let s = shell();
    s.ok("onboard", json!({"name": "Ben"}));
    let mine = s.ok("my_code", json!({}));
    let code = mine["code"].as_str().unwrap();
    assert!(code.starts_with("festival:") && code.len() == "festival:".len() + 64);
    assert!(mine["qr_svg"].as_str().unwrap().contains("<svg"));
    assert_eq!(mine["name"], "Ben");

    assert_eq!(s.code("verify", json!({"code": "festival:not-a-key"})), "invalid_code");
    assert_eq!(s.code("verify", json!({"code": code})), "own_code");
    assert_eq!(s.code("verify", json!({"code": format!("festival:{}", "ab".repeat(32))})), "invalid_code");
    let p = s.ok("verify", json!({"code": FRIEND}));
    assert_eq!(p["verified"], true);
    assert_eq!(p["path"], "via_others");
    assert!(s
        .ok("peers", json!({}))
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["peer"] == p["peer"] && x["verified"] == true));

    // No organiser key in the settings: no announcements.
    assert_eq!(s.ok("announcements", json!({})), json!([]));

    assert_eq!(s.code("send_dm", json!({"to": "nobody", "text": "hi"})), "invalid_peer");
    let dm = s.ok("send_dm", json!({"to": p["peer"], "text": "meet at the bar?"}));
    assert_eq!(dm["body"]["type"], "direct");
    assert_eq!(dm["delivery"]["state"], "saved");
    assert_eq!(dm["delivery"]["overdue_at"], dm["created_at"].as_u64().unwrap() + 120_000);
    // Retry: alone, there is nobody to send it to (a typed error, nothing
    // changes); not a DM of mine, or nothing stored, is another.
    assert_eq!(s.code("retry", json!({"id": dm["id"]})), "no_one_in_reach");
    let still = s.ok("history", json!({"room": "dm", "before": null, "limit": 10}));
    let kept = still["messages"].as_array().unwrap().iter().find(|m| m["id"] == dm["id"]).unwrap().clone();
    assert_eq!(kept["delivery"]["overdue_at"], dm["delivery"]["overdue_at"], "the clock goes on");
    assert_eq!(s.code("retry", json!({"id": "ab".repeat(32)})), "not_your_message");
    let post = s.ok("send", json!({"room": "festival", "text": "a room message"}));
    assert_eq!(s.code("retry", json!({"id": post["id"]})), "not_your_message");
    let convo = s.ok("dm_history", json!({"peer": p["peer"], "before": null, "limit": 20}));
    assert_eq!(convo["messages"][0]["id"], dm["id"]);
}

#[test]
fn settings_are_validated_kept_and_applied() {
    let s = shell();
    s.ok("onboard", json!({"name": "Cleo"}));
    let mut settings = s.ok("settings", json!({}));
    assert_eq!(settings["name"], "Cleo");

    settings["festival"] = json!("Not A Festival Id");
    assert_eq!(s.code("save_settings", json!({"settings": settings})), "invalid_festival");
    settings["festival"] = json!("glasto26");
    settings["relay_url"] = json!("http://relay.example");
    assert_eq!(s.code("save_settings", json!({"settings": settings})), "invalid_relay_url");
    settings["relay_url"] = Value::Null;
    settings["relay_id"] = json!("not-a-relay-id");
    assert_eq!(s.code("save_settings", json!({"settings": settings})), "invalid_relay_id");
    settings["relay_id"] = Value::Null;
    settings["interfaces"] = json!(["nosuch0"]);
    let e = s.call("save_settings", json!({"settings": settings})).unwrap_err();
    assert_eq!(e["code"], "invalid_interface");
    assert!(e["message"].as_str().unwrap().contains("lo"), "names the interfaces there are: {e}");
    settings["interfaces"] = json!([]);
    // Nothing was kept from the refused attempts.
    assert_eq!(s.ok("settings", json!({}))["festival"], "festival");

    // A relay on loopback where none listens: the node tries it, never reaches it.
    settings["relay_url"] = json!("ws://127.0.0.1:9/relay");
    settings["peer_limit"] = json!(3);
    settings["interfaces"] = json!(["lo"]);
    settings["name"] = json!("Cleo B");
    let kept = s.ok("save_settings", json!({"settings": settings}));
    assert_eq!(kept["festival"], "glasto26");
    assert_eq!(kept["interfaces"], json!(["lo"]));
    // The node restarted into the new festival with the new limits.
    let status = s.ok("status", json!({}));
    assert_eq!(status["festival"], "glasto26");
    assert_eq!(status["peer_limit"], 3);
    assert_eq!(status["name"], "Cleo B");
    assert!(matches!(status["relay"]["state"].as_str(), Some("connecting" | "offline")), "{status}");
    assert_eq!(status["relay"]["url"], "ws://127.0.0.1:9/relay");
    // And it survives a restart of the app.
    let again = festival_app::Settings::load(s.backend.data_dir()).unwrap();
    assert_eq!((again.festival.as_str(), again.peer_limit), ("glasto26", Some(3)));
}

#[test]
fn mute_block_and_viewing_are_kept_listed_and_undone() {
    let s = shell();
    assert_eq!(s.code("mute", json!({"conversation": "festival", "muted": true})), "not_onboarded");
    s.ok("onboard", json!({"name": "Dev"}));
    let friend = FRIEND.trim_start_matches("festival:");
    let me = s.ok("status", json!({}))["peer"].as_str().unwrap().to_owned();

    s.ok("mute", json!({"conversation": "festival", "muted": true}));
    assert_eq!(s.ok("rooms", json!({}))[0]["muted"], true);
    s.ok("mute", json!({"conversation": format!("dm:{friend}"), "muted": true}));
    s.ok("block", json!({"peer": friend, "blocked": true}));
    let list = s.ok("people_choices", json!({}));
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        (list[0]["peer"].as_str(), &list[0]["muted"], &list[0]["blocked"]),
        (Some(friend), &json!(true), &json!(true))
    );
    assert!(list[0]["sender"]["short_fingerprint"].as_str().is_some());

    // Undone, one flag at a time; the room too.
    s.ok("block", json!({"peer": friend, "blocked": false}));
    s.ok("mute", json!({"conversation": format!("dm:{friend}"), "muted": false}));
    s.ok("mute", json!({"conversation": "festival", "muted": false}));
    assert_eq!(s.ok("people_choices", json!({})), json!([]));
    assert_eq!(s.ok("rooms", json!({}))[0]["muted"], false);

    // Bad input: a typed error each.
    assert_eq!(s.code("block", json!({"peer": me, "blocked": true})), "invalid_peer");
    assert_eq!(s.code("block", json!({"peer": "nobody", "blocked": true})), "invalid_peer");
    assert_eq!(s.code("mute", json!({"conversation": "dm:nobody", "muted": true})), "invalid_peer");
    assert_eq!(s.code("mute", json!({"conversation": "!!!", "muted": true})), "invalid_room");
    assert_eq!(s.code("mute", json!({"conversation": "camp-b12", "muted": true})), "not_joined");
    assert_eq!(s.code("viewing", json!({"conversation": "dm:nobody"})), "invalid_peer");
    s.ok("viewing", json!({"conversation": "festival"}));
    // Search: what was said here is found, bad input is a typed error.
    s.ok("send", json!({"room": "festival", "text": "Fireworks by the lake at midnight"}));
    let found = s.ok("search", json!({"query": "firew", "limit": 20}));
    assert_eq!(found["messages"][0]["body"]["text"], "Fireworks by the lake at midnight");
    assert_eq!(found["pending"], 0);
    assert_eq!(s.code("search", json!({"query": "  \"\" ", "limit": 20})), "invalid_search");
    s.ok("viewing", json!({"conversation": null}));
}
