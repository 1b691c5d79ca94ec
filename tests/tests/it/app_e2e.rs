//! The desktop app end to end, in its real WebView: tauri-driver and
//! WebKitWebDriver drive `festival-chat` on an Xvfb display, and a headless
//! `festival-node run` (the stage box) runs beside it in the same private
//! network namespace. Everything between them is real: mDNS on loopback,
//! signed signaling, a WebRTC data channel, SQLite on both sides.
//!
//! 1. onboarding: pick a name; the QR code and fingerprint are shown;
//! 2. a message typed in the app reaches the node;
//! 3. the node's reply appears in the app, and the app's own message shows
//!    its delivery state;
//! 4. a direct message to the stage box: the node can read it, and the
//!    app shows it delivered (the node's signed receipt came back);
//! 5. the stage box is the festival's organiser (`--organiser self`, and
//!    its key in the app's settings): its announcement appears in the app
//!    as the pinned banner;
//! 6. desktop notifications, as the desktop's notification service receives
//!    them (a real `org.freedesktop.Notifications` server on a private
//!    session bus, `festival_lab::app::Notifications`): a room message that
//!    mentions the app's person by name, the announcement and a DM each
//!    raise one; the crowd's room messages raise none; the mention is
//!    highlighted in the room;
//! 7. a meet-up: the stage box posts "meet at the big wheel" in the room
//!    (`/meetup`), the app shows its card, one tap answers "Coming", and
//!    the node's card counts the app's person as coming;
//! 8. a private group of three (the app, the stage box and a second node),
//!    made in the app: the nodes learn it from the sealed message, the
//!    stage box posts to it, and the app's answer reaches both; a fourth
//!    node carries that answer (`/held`) but cannot read it (no `message`
//!    event);
//! 9. photos: the stage box posts one (`/photo FILE CAPTION`) and the app
//!    shows it inline, the whole JPEG loaded; the app sends one (the file
//!    picker's input, a caption typed) and the node receives it whole;
//! 10. the conversation at phone size (390 x 844, the app's least).
//!
//! Screenshots of each step go to `artifacts/e2e-*.png`; each is checked
//! not to be a blank window.
//!
//! Needs: root in a private network namespace (scripts/test runs all tests
//! inside `unshare --net`), Xvfb, WebKitWebDriver (webkit2gtk-driver),
//! tauri-driver, and the app built with its UI (`scripts/test` does all of
//! it).

use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use festival_lab::app::{self, Display, Driver, Notifications, Shown};
use festival_lab::{deadline, phase, NodeProc};
use serde_json::json;

/// A UI reaction to wait for: the app has to hear from the node's process
/// over mDNS and WebRTC first, so this is generous.
const UI_WAIT: Duration = Duration::from_secs(40);

#[test]
fn the_app_chats_with_a_node_beside_it() {
    festival_node::netns::require_private_netns();
    // One lab test at a time (the LANs take this lock too): a WebKit window
    // beside a LAN of nodes on two cores would test the machine's load.
    let _turn = festival_lab::sys::LabLock::take();
    let start = Instant::now();
    let work = tempfile::tempdir().expect("temp dir");
    let data = work.path().join("app-data");
    let display = Display::start(work.path());
    let notifications = Notifications::start(work.path());
    let data_env = data.to_string_lossy().into_owned();
    let env = [
        ("FESTIVAL_DATA_DIR", data_env.as_str()),
        ("FESTIVAL_POWER", "mains"),
        ("RUST_LOG", "info"),
        ("DBUS_SESSION_BUS_ADDRESS", notifications.address()),
    ];
    let mut driver = Driver::start(&display, work.path(), &env);
    phase(start, "display and driver up");

    // The stage box, headless, in this same namespace, and the festival's
    // organiser: the app is given its key as the festival publishes it.
    let mut node = NodeProc::spawn_here("stage-box", &["--power", "mains", "--organiser", "self"]);
    phase(start, "festival-node running");
    std::fs::create_dir_all(&data).expect("app data dir");
    std::fs::set_permissions(&data, <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700))
        .expect("chmod");
    std::fs::write(data.join("settings.json"), json!({ "organiser": node.peer }).to_string()).expect("settings");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let outcome = rt.block_on(async {
        let client = connect(&driver.url).await;
        let result = steps(&client, &mut node, &notifications, start).await;
        if result.is_err() {
            let _ = shot(&client, "failure").await;
        }
        let _ = client.close().await;
        result
    });
    driver.process.check_alive();
    if let Err(e) = outcome {
        panic!("{e}\n--- tauri-driver and app output:\n{}\n--- node:\n{}", driver.process.tail(), node.diagnostics());
    }
    node.quit();
    phase(start, "done");
}

type Step<T> = Result<T, String>;

async fn connect(url: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("wry"));
    caps.insert("tauri:options".into(), json!({ "application": app::app_binary() }));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let by = Instant::now() + app::START_TIMEOUT;
    loop {
        match ClientBuilder::new(connector.clone()).capabilities(caps.clone()).connect(url).await {
            Ok(c) => return c,
            Err(e) if Instant::now() < by => eprintln!("WebDriver session not yet: {e}"),
            Err(e) => panic!("no WebDriver session with the app: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn steps(c: &Client, node: &mut NodeProc, notifications: &Notifications, start: Instant) -> Step<()> {
    // 1. Onboarding.
    let name = wait_css(c, ".onboarding-card input", "the name field").await?;
    name.send_keys("Ana").await.map_err(err("type a name"))?;
    click(c, ".onboarding-card button[type=submit]", "Join").await?;
    wait_css(c, ".onboarding-card .qr svg", "the QR code").await?;
    let fingerprint = wait_css(c, "[aria-label='Your fingerprint']", "the fingerprint").await?;
    let fp = fingerprint.text().await.map_err(err("read the fingerprint"))?;
    if fp.trim().is_empty() {
        return Err("the fingerprint is empty".into());
    }
    shot(c, "1-onboarding").await?;
    click(c, ".onboarding-card button.btn-primary", "Start chatting").await?;
    let composer = wait_css(c, "[aria-label='Message']", "the composer").await?;
    phase(start, &format!("onboarded (fingerprint {})", fp.trim()));

    // 2. The app says something; the node receives it over the mesh.
    let hello = "Hello from the app";
    composer.send_keys(hello).await.map_err(err("type a message"))?;
    click(c, ".send-btn", "Send").await?;
    let by = deadline(UI_WAIT.as_secs());
    let app_peer = node
        .try_wait_until(by, |l| {
            l.events("message")
                .find(|m| m["body"]["text"] == hello)
                .and_then(|m| m["author"].as_str().map(str::to_owned))
        })
        .map_err(|_| "the node never received the app's message".to_string())?;
    phase(start, "the node got the app's message");

    // 3. The node answers; the answer shows in the app. The app's own
    //    message has left the device by now: sent, delivered or read.
    let reply = "Welcome to the main stage";
    node.say(reply);
    wait_text(c, "li.msg.theirs .msg-text", reply).await?;
    let state = wait_css(c, "li.msg.mine .state", "the delivery state of the app's message").await?;
    let class = state.attr("class").await.map_err(err("read the state"))?.unwrap_or_default();
    if !["state-sent", "state-delivered", "state-read"].iter().any(|s| class.contains(s)) {
        return Err(format!("the app's message shows state {class:?}"));
    }
    shot(c, "2-room-chat").await?;
    phase(start, &format!("the node's reply is shown; own message {class}"));

    // 4. A sealed direct message to the stage box, from the people panel.
    click(c, ".people-toggle", "People nearby").await?;
    // The label names the person with their short fingerprint ("stage-box ·
    // 18BD"), so a lookalike name cannot take the button's place.
    click(c, "[aria-label^='Message stage-box \u{b7} ']", "Message stage-box").await?;
    let composer = wait_css(c, "[aria-label='Message']", "the DM composer").await?;
    let secret = "Meet me at the sound desk";
    composer.send_keys(secret).await.map_err(err("type a DM"))?;
    click(c, ".send-btn", "Send").await?;
    let by = deadline(UI_WAIT.as_secs());
    let dm = node
        .try_wait_until(by, |l| l.events("message").find(|m| m["body"]["text"] == secret).cloned())
        .map_err(|_| "the node never read the DM".to_string())?;
    if dm["body"]["type"] != "direct" {
        return Err(format!("the DM arrived as {}", dm["body"]));
    }
    wait_until_css(c, "li.msg.mine .state.state-delivered, li.msg.mine .state.state-read", "the DM delivered").await?;
    shot(c, "3-direct-message").await?;
    phase(start, "the DM was delivered and the receipt shown");

    // 5. The organiser's announcement, pinned above the conversation.
    let notice = "Stage two opens at 20:00";
    node.send_line(&format!("/announce 2h {notice}"));
    wait_text(c, ".announcements .announcement-text", notice).await?;
    shot(c, "4-announcement").await?;
    phase(start, "the organiser's announcement is shown");

    // 6. Notifications. The app shows the DM with the stage box; a room
    //    message naming Ana raises one, the announcement raised one.
    let mention = "@Ana the sound check moved to 19:00";
    node.say(mention);
    let raised = wait_shown(notifications, |n| n.body.contains("sound check moved")).await?;
    if !raised.summary.contains("stage-box") || !raised.summary.contains("festival") {
        return Err(format!("the mention's notification says {raised:?}"));
    }
    wait_shown(notifications, |n| n.summary.contains("Announcement") && n.body == notice).await?;
    // The mention, highlighted in its room.
    click(c, ".conv-list button.conv", "the Festival room").await?;
    wait_until_css(c, "li.msg.mentioned mark.mention.of-me", "the highlighted mention").await?;
    shot(c, "5-mention").await?;
    // A DM while the room is on screen.
    let dm_text = "Backstage pass is at the info tent";
    node.send_line(&format!("/dm {app_peer} {dm_text}"));
    let dm = wait_shown(notifications, |n| n.body == dm_text).await?;
    if !dm.summary.contains("stage-box") {
        return Err(format!("the DM's notification says {dm:?}"));
    }
    // The crowd's room messages raised none of their own.
    let all = notifications.shown();
    if let Some(n) = all.iter().find(|n| n.body.contains("Welcome to the main stage")) {
        return Err(format!("a room message raised a notification: {n:?} (all: {all:?})"));
    }
    phase(start, &format!("notifications raised: {}", all.len()));

    // 7. A meet-up from the stage box, answered in the app with one tap.
    node.send_line("/meetup 45m the big wheel");
    wait_text(c, "li.msg.theirs .meetup-title", "the big wheel").await?;
    click(c, "li.msg.theirs .meetup-answers button[aria-pressed='false']", "Coming").await?;
    wait_until_css(c, "li.msg.theirs .meetup-answers button[aria-pressed='true']", "the answer pressed").await?;
    let by = deadline(UI_WAIT.as_secs());
    node.try_wait_until(by, |l| {
        l.events("meetup_changed").find(|m| m["body"]["place"] == "the big wheel" && m["body"]["coming"] == 1).cloned()
    })
    .map_err(|_| "the node's card never counted the app's answer".to_string())?;
    wait_text(c, "li.msg.theirs .meetup-count", "1 coming").await?;
    shot(c, "6-meetup").await?;
    phase(start, "a meet-up answered");

    // 8. A private group of three, made in the app; a fourth node carries
    // its messages and cannot read them.
    let crew = NodeProc::spawn_here("crew-two", &["--power", "mains"]);
    let mut carrier = NodeProc::spawn_here("carrier", &["--power", "mains"]);
    click(c, "[aria-label='New private group']", "New private group").await?;
    let name = wait_css(c, ".group-form input:not([type=checkbox])", "the group name").await?;
    name.send_keys("Stage crew").await.map_err(err("type the group's name"))?;
    let picker = |who: &str| format!("//ul[@class='group-people']//label[contains(., '{who}')]/input");
    // Everyone nearby listed first: a person found while picking moves the
    // list under the pointer (the two new nodes are still being found).
    for who in ["stage-box", "crew-two", "carrier"] {
        c.wait()
            .at_most(UI_WAIT)
            .every(Duration::from_millis(100))
            .for_element(Locator::XPath(&picker(who)))
            .await
            .map_err(|e| format!("{who} in the group picker: {e}"))?;
    }
    for who in ["stage-box", "crew-two"] {
        let pick = c.find(Locator::XPath(&picker(who))).await.map_err(err("find a member"))?;
        pick.click().await.map_err(err("pick a member"))?;
        if !pick.is_selected().await.map_err(err("read a pick"))? {
            return Err(format!("{who} is not picked after a click"));
        }
    }
    click(c, ".group-form button[type=submit]", "Make the group").await?;
    let by = deadline(UI_WAIT.as_secs());
    let made = |l: &festival_lab::Log| {
        l.events("message")
            .find(|m| m["body"]["type"] == "group_members" && m["body"]["name"] == "Stage crew")
            .and_then(|m| m["body"]["group"].as_str().map(str::to_owned))
    };
    let group = node.try_wait_until(by, made).map_err(|_| "the stage box never learnt the group".to_string())?;
    crew.try_wait_until(by, made).map_err(|_| "the second node never learnt the group".to_string())?;
    let welcome = "Welcome to the crew";
    node.send_line(&format!("/group {group} {welcome}"));
    wait_text(c, "li.msg.theirs .msg-text", welcome).await?;
    let composer = wait_css(c, "[aria-label='Message']", "the group's composer").await?;
    let thanks = "Thanks, see you backstage";
    composer.send_keys(thanks).await.map_err(err("type in the group"))?;
    click(c, ".send-btn", "Send").await?;
    let by = deadline(UI_WAIT.as_secs());
    let read = |l: &festival_lab::Log| {
        l.events("message").find(|m| m["body"]["type"] == "group" && m["body"]["text"] == thanks).cloned()
    };
    let answer =
        node.try_wait_until(by, read).map_err(|_| "the stage box never read the app's group message".to_string())?;
    crew.try_wait_until(by, read).map_err(|_| "the second member never read the app's group message".to_string())?;
    let id = answer["id"].as_str().ok_or("the group message has no id")?.to_owned();
    let by = deadline(UI_WAIT.as_secs());
    loop {
        let from = carrier.log().lines.len();
        carrier.send_line(&format!("/held {id}"));
        let held = carrier
            .try_wait_until(by, |l| {
                l.lines[from..].iter().filter_map(|x| x.json.as_ref()).find(|j| j["id"] == id.as_str()).cloned()
            })
            .map_err(|_| "the carrier never answered /held".to_string())?;
        if held["held"] == true {
            break;
        }
        if Instant::now() > by {
            return Err("the fourth node never carried the group's message".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if carrier.log().has_message(&id) || carrier.log().events("message").any(|m| m["body"]["type"] == "group") {
        return Err("the fourth node, not a member, showed the group's message".into());
    }
    shot(c, "8-group").await?;
    phase(start, "a private group with the stage box");

    // 9. Photos, both ways, in the festival room.
    click(c, ".conv-lists > ul.conv-list:first-of-type > li:first-child > button.conv", "the festival room").await?;
    let icons = concat!(env!("CARGO_MANIFEST_DIR"), "/../icons");
    node.send_line(&format!("/photo {icons}/icon.png the stage from the hill"));
    let shown = "li.msg.theirs .photo-open img[src^='blob:']";
    wait_until_css(c, shown, "the node's photo, whole, inline").await?;
    let width = c
        .execute(
            &format!("const i = document.querySelector(\"{shown}\"); return i.complete ? i.naturalWidth : 0;"),
            vec![],
        )
        .await
        .map_err(err("read the photo's width"))?;
    if width.as_u64().unwrap_or(0) == 0 {
        return Err(format!("the node's photo did not load in the WebView (naturalWidth {width})"));
    }
    wait_text(c, "li.msg.theirs .photo figcaption", "the stage from the hill").await?;
    let input = wait_css(c, "input[data-testid='photo-input']", "the photo picker").await?;
    input.send_keys(&format!("{icons}/128x128@2x.png")).await.map_err(err("pick a photo"))?;
    wait_until_css(c, ".photo-tray img", "the picked photo above the box").await?;
    let composer = wait_css(c, "[aria-label='Message']", "the composer").await?;
    let caption = "we are by the sound desk";
    composer.send_keys(caption).await.map_err(err("type the caption"))?;
    click(c, ".send-btn", "Send the photo").await?;
    let by = deadline(UI_WAIT.as_secs());
    node.try_wait_until(by, |l| {
        let whole = |m: &&serde_json::Value| m["body"]["caption"] == caption && m["body"]["complete"] == true;
        l.events("message").find(whole).or_else(|| l.events("photo_ready").find(whole)).cloned()
    })
    .map_err(|_| "the node never received the app's photo whole".to_string())?;
    wait_until_css(c, "li.msg.mine .photo-open img[src^='blob:']", "the app's own photo inline").await?;
    shot(c, "9-photo").await?;
    phase(start, "photos both ways");

    // 10. Phone size.
    c.set_window_size(390, 844).await.map_err(err("resize the window to 390 x 844"))?;
    // The phone layout: one column, with a way back to the list.
    let back = wait_css(c, ".chat .back-btn", "the back button").await?;
    let by = Instant::now() + UI_WAIT;
    while !back.is_displayed().await.map_err(err("is the back button shown"))? {
        if Instant::now() > by {
            return Err("the window never took the phone layout at 390 x 844".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shot(c, "10-phone").await?;
    Ok(())
}

/// Waits until the notification service was asked to show one that `pick`s.
async fn wait_shown(n: &Notifications, pick: impl Fn(&Shown) -> bool) -> Step<Shown> {
    let by = Instant::now() + UI_WAIT;
    loop {
        if let Some(found) = n.shown().into_iter().find(|s| pick(s)) {
            return Ok(found);
        }
        if Instant::now() > by {
            return Err(format!("no such notification was raised; all: {:?}", n.shown()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e}")
}

async fn wait_css(c: &Client, css: &str, what: &str) -> Step<Element> {
    c.wait()
        .at_most(UI_WAIT)
        .every(Duration::from_millis(100))
        .for_element(Locator::Css(css))
        .await
        .map_err(|e| format!("waiting for {what} ({css}): {e}"))
}

async fn wait_until_css(c: &Client, css: &str, what: &str) -> Step<()> {
    wait_css(c, css, what).await.map(|_| ())
}

async fn click(c: &Client, css: &str, what: &str) -> Step<()> {
    let el = wait_css(c, css, what).await?;
    el.click().await.map_err(|e| format!("clicking {what}: {e}"))
}

/// Waits until some element matching `css` shows `text`.
async fn wait_text(c: &Client, css: &str, text: &str) -> Step<()> {
    let by = Instant::now() + UI_WAIT;
    loop {
        for el in c.find_all(Locator::Css(css)).await.map_err(err("find messages"))? {
            if el.text().await.is_ok_and(|t| t.contains(text)) {
                return Ok(());
            }
        }
        if Instant::now() > by {
            return Err(format!("{text:?} never appeared in {css}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Saves a screenshot under artifacts/ and fails if the window is blank.
async fn shot(c: &Client, name: &str) -> Step<()> {
    // WebKit snapshots what it last painted: let two frames pass so the
    // picture shows the DOM the test just checked.
    let frames = "const done = arguments[arguments.length - 1];
        requestAnimationFrame(() => requestAnimationFrame(() => done(true)));";
    c.execute_async(frames, vec![]).await.map_err(err("wait for a painted frame"))?;
    let png = c.screenshot().await.map_err(err("screenshot"))?;
    let path = app::artifacts_dir().join(format!("e2e-{name}.png"));
    std::fs::write(&path, &png).map_err(err("save screenshot"))?;
    let looks = app::looks(&png);
    eprintln!("screenshot {}: {looks:?}", path.display());
    if looks.is_blank() {
        return Err(format!("the window looks blank in {}: {looks:?}", path.display()));
    }
    Ok(())
}
