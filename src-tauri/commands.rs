//! The Tauri commands: each one is a thin wrapper around one method of
//! `festival_app::App`, which holds everything they do. Errors reach the UI
//! as `AppError { code, message }`. The contract is in docs/app-api.md.

use festival_app::{App, AppError, AppState, MyCode, Settings};
use festival_core::body::MeetupAnswer;
use festival_core::MessageId;
use festival_node::runtime::{
    AnnouncementView, GroupView, HistoryPage, MessageView, NodeEvent, PeerView, PersonChoiceView, RoomView,
    SearchResults, Status,
};
use festival_store::HistoryCursor;
use tauri::ipc::Channel;
use tauri::State;
use tokio::task::JoinHandle;

type Result<T> = std::result::Result<T, AppError>;

/// The live event subscription of the window. A new `subscribe` (the page
/// reloaded) replaces the old one, whose channel has no listener any more.
#[derive(Default)]
pub struct Subscription(std::sync::Mutex<Option<JoinHandle<()>>>);

#[tauri::command]
pub async fn app_state(app: State<'_, App>) -> Result<AppState> {
    app.app_state().await
}

#[tauri::command]
pub async fn onboard(app: State<'_, App>, name: String) -> Result<Status> {
    app.onboard(&name).await
}

#[tauri::command]
pub async fn my_code(app: State<'_, App>) -> Result<MyCode> {
    app.my_code().await
}

#[tauri::command]
pub async fn rooms(app: State<'_, App>) -> Result<Vec<RoomView>> {
    app.rooms().await
}

#[tauri::command]
pub async fn join_room(app: State<'_, App>, name: String) -> Result<RoomView> {
    app.join_room(&name).await
}

#[tauri::command]
pub async fn history(
    app: State<'_, App>,
    room: String,
    before: Option<HistoryCursor>,
    limit: u32,
) -> Result<HistoryPage> {
    app.history(&room, before, limit).await
}

#[tauri::command]
pub async fn dm_history(
    app: State<'_, App>,
    peer: String,
    before: Option<HistoryCursor>,
    limit: u32,
) -> Result<HistoryPage> {
    app.dm_history(&peer, before, limit).await
}

#[tauri::command]
pub async fn send(app: State<'_, App>, room: String, text: String) -> Result<MessageView> {
    app.send(&room, &text).await
}

#[tauri::command]
pub async fn send_meetup(app: State<'_, App>, room: String, place: String, at: u64) -> Result<MessageView> {
    app.send_meetup(&room, &place, at).await
}

/// `send_photo`'s body is raw bytes (a picture of megabytes as a JSON
/// array of numbers would be ten times its size): a 4-byte little-endian
/// length, that many bytes of JSON `{ "room": ..., "caption": ... }`, then
/// the picture's bytes (ui/src/api.ts writes it).
#[derive(serde::Deserialize)]
struct PhotoHeader {
    room: String,
    #[serde(default)]
    caption: String,
}

/// Most bytes of `send_photo`'s JSON header (a room id and a caption of
/// at most 1,000 bytes, escaped).
const MAX_PHOTO_HEADER: usize = 16 * 1024;

fn photo_request(body: &[u8]) -> Result<(PhotoHeader, &[u8])> {
    let bad = || AppError::new(festival_app::ErrorCode::NotAPhoto, "The photo did not reach the app whole.");
    // Refused before anything is copied: no picture taken is this big.
    let max = festival_node::photo::MAX_INPUT_BYTES + 4 + MAX_PHOTO_HEADER;
    if body.len() > max {
        let why = format!("That picture is too big to send: {} bytes; photos of up to 40 MB are taken.", body.len());
        return Err(AppError::new(festival_app::ErrorCode::PhotoTooLarge, why));
    }
    let len = body.get(..4).ok_or_else(bad)?;
    let len = u32::from_le_bytes(len.try_into().map_err(|_| bad())?) as usize;
    if len > MAX_PHOTO_HEADER {
        return Err(bad());
    }
    let header = body.get(4..4 + len).ok_or_else(bad)?;
    let header: PhotoHeader = serde_json::from_slice(header).map_err(|_| bad())?;
    Ok((header, &body[4 + len..]))
}

#[tauri::command]
pub async fn send_photo(app: State<'_, App>, request: tauri::ipc::Request<'_>) -> Result<MessageView> {
    let tauri::ipc::InvokeBody::Raw(body) = request.body() else {
        return Err(AppError::new(festival_app::ErrorCode::NotAPhoto, "Send a photo's bytes, not JSON."));
    };
    let (header, picture) = photo_request(body)?;
    app.send_photo(&header.room, picture.to_vec(), &header.caption).await
}

/// The photo's JPEG as raw bytes (an `ArrayBuffer` in the UI).
#[tauri::command]
pub async fn photo(app: State<'_, App>, id: MessageId) -> Result<tauri::ipc::Response> {
    Ok(tauri::ipc::Response::new(app.photo(id).await?))
}

#[tauri::command]
pub async fn answer_meetup(app: State<'_, App>, meetup: MessageId, answer: MeetupAnswer) -> Result<MessageView> {
    app.answer_meetup(meetup, answer).await
}

#[tauri::command]
pub async fn create_group(app: State<'_, App>, name: String, members: Vec<String>) -> Result<GroupView> {
    app.create_group(&name, &members).await
}

#[tauri::command]
pub async fn groups(app: State<'_, App>) -> Result<Vec<GroupView>> {
    app.groups().await
}

#[tauri::command]
pub async fn send_group(app: State<'_, App>, group: String, text: String) -> Result<MessageView> {
    app.send_group(&group, &text).await
}

#[tauri::command]
pub async fn invite_to_group(app: State<'_, App>, group: String, members: Vec<String>) -> Result<GroupView> {
    app.invite_to_group(&group, &members).await
}

#[tauri::command]
pub async fn leave_group(app: State<'_, App>, group: String) -> Result<GroupView> {
    app.leave_group(&group).await
}

#[tauri::command]
pub async fn group_history(
    app: State<'_, App>,
    group: String,
    before: Option<HistoryCursor>,
    limit: u32,
) -> Result<HistoryPage> {
    app.group_history(&group, before, limit).await
}

#[tauri::command]
pub async fn retry(app: State<'_, App>, id: MessageId) -> Result<MessageView> {
    app.retry(id).await
}

#[tauri::command]
pub async fn send_dm(app: State<'_, App>, to: String, text: String) -> Result<MessageView> {
    app.send_dm(&to, &text).await
}

#[tauri::command]
pub async fn mark_read(app: State<'_, App>, room: String, ids: Vec<MessageId>) -> Result<()> {
    app.mark_read(&room, ids).await
}

#[tauri::command]
pub async fn peers(app: State<'_, App>) -> Result<Vec<PeerView>> {
    app.peers().await
}

/// Mute a conversation (`dm:<peer>`: the person) or undo it.
#[tauri::command]
pub async fn mute(app: State<'_, App>, conversation: String, muted: bool) -> Result<()> {
    app.mute(&conversation, muted).await
}

#[tauri::command]
pub async fn block(app: State<'_, App>, peer: String, blocked: bool) -> Result<()> {
    app.block(&peer, blocked).await
}

/// Messages I can read holding every word of `query`, newest first.
#[tauri::command]
pub async fn search(app: State<'_, App>, query: String, limit: u32) -> Result<SearchResults> {
    app.search(&query, limit).await
}

#[tauri::command]
pub async fn people_choices(app: State<'_, App>) -> Result<Vec<PersonChoiceView>> {
    app.people_choices().await
}

/// The conversation on screen: no notifications for it while focused.
#[tauri::command]
pub fn viewing(app: State<'_, App>, conversation: Option<String>) -> Result<()> {
    app.viewing(conversation.as_deref())
}

#[tauri::command]
pub async fn announcements(app: State<'_, App>) -> Result<Vec<AnnouncementView>> {
    app.announcements().await
}

#[tauri::command]
pub async fn verify(app: State<'_, App>, code: String) -> Result<PeerView> {
    app.verify(&code).await
}

#[tauri::command]
pub async fn status(app: State<'_, App>) -> Result<Status> {
    app.status().await
}

#[tauri::command]
pub async fn settings(app: State<'_, App>) -> Result<Settings> {
    Ok(app.settings().await)
}

#[tauri::command]
pub async fn save_settings(app: State<'_, App>, settings: Settings) -> Result<Settings> {
    app.save_settings(settings).await
}

#[tauri::command]
pub async fn subscribe(
    app: State<'_, App>,
    subscription: State<'_, Subscription>,
    on_event: Channel<NodeEvent>,
) -> Result<()> {
    let task = app.subscribe(move |ev| on_event.send(ev).is_ok());
    let old = subscription.0.lock().unwrap_or_else(|p| p.into_inner()).replace(task);
    if let Some(old) = old {
        old.abort();
    }
    Ok(())
}

macro_rules! festival_commands {
    ($($name:ident),* $(,)?) => {
        /// Every command's name, from command_list.rs (the list build.rs
        /// grants and tests/commands.rs checks the UI against).
        pub const COMMANDS: &[&str] = &[$(stringify!($name)),*];

        fn handler<R: tauri::Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$($name),*]
        }
    };
}
include!("command_list.rs");

/// Register every command (with any runtime: the real one, or the mock one
/// in tests), and the notification plugin: the Rust side raises every
/// notification, so the page is granted none of the plugin's commands.
pub fn register<R: tauri::Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.plugin(tauri_plugin_notification::init()).manage(Subscription::default()).invoke_handler(handler())
}
