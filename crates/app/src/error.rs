//! The one error type the UI sees: `{ code, message }`. The code is stable
//! (the UI branches on it and may translate it); the message is English text
//! a person can read as it is.

use festival_core::body::BodyError;
use festival_core::sync::SendError;
use festival_node::engine::EngineError;
use festival_node::local::LocalError;
use festival_node::photo::PhotoError;
use festival_node::runtime::{NodeError, StartError};
use festival_store::StoreError;
use serde::Serialize;

/// What went wrong, as the UI branches on it. Serialized in snake_case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No identity yet: pick a name first (`onboard`).
    NotOnboarded,
    /// `onboard` when an identity exists already.
    AlreadyOnboarded,
    /// A display name that is empty, too long, or breaks the name rules.
    InvalidName,
    /// A room name that does not make a room id.
    InvalidRoom,
    /// Posting to a room that was not joined.
    NotJoined,
    EmptyMessage,
    MessageTooLong,
    /// A contact code that does not parse.
    InvalidCode,
    /// Verifying one's own code.
    OwnCode,
    /// A peer id that does not parse, or a key that is not a valid recipient.
    InvalidPeer,
    InvalidFestival,
    InvalidRelayUrl,
    /// A pinned relay id that is not a PeerId (64 hex digits of a public key).
    InvalidRelayId,
    /// An organiser key that is not a PeerId.
    InvalidOrganiser,
    InvalidPeerLimit,
    InvalidInterface,
    /// A storage budget or message lifetime out of range.
    InvalidStorage,
    /// The node could not open its sockets or join the LAN.
    Network,
    /// The database could not be read or written.
    Storage,
    /// The list of people muted or blocked is full (10,000): undo some.
    TooManyChoices,
    /// A search with no word in it, or too long.
    InvalidSearch,
    /// A meet-up place that is empty, longer than 200 bytes, or more than
    /// one line.
    InvalidPlace,
    /// A meet-up time in the past, or beyond the festival's message lifetime.
    InvalidMeetupTime,
    /// Answering a meet-up whose card has gone (half an hour after its time).
    MeetupOver,
    /// Answering a meet-up this device does not hold.
    NoSuchMeetup,
    /// Retrying a message that is not one of your DMs stored here.
    NotYourMessage,
    /// A group of no one else, or of more than 32 in all.
    InvalidGroupMembers,
    /// A group name that is empty, longer than 64 bytes, or more than one line.
    InvalidGroupName,
    /// Posting to, inviting to or leaving a group you are not in.
    NotInGroup,
    /// Retrying again within 10 s, or past 10 retries a minute.
    RetryTooSoon,
    /// Retrying with no link up: nothing could be sent.
    NoOneInReach,
    /// A file that is not a picture, or of a kind not taken (JPEG, PNG,
    /// WebP and GIF are), or damaged.
    NotAPhoto,
    /// A picture file over 40 MB, or of more pixels than are opened.
    PhotoTooLarge,
    /// Opening a photo this device does not hold.
    NoSuchPhoto,
    /// Opening a photo some of whose pieces are still on their way.
    PhotoIncomplete,
    /// Opening a photo whose pieces do not fit together.
    PhotoDamaged,
    /// The node is not running (stopped, restarting, or failed to start).
    NodeStopped,
    Internal,
}

/// An error for the UI: `{ "code": "invalid_code", "message": "..." }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ts_rs::TS, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError { code, message: message.into() }
    }
}

fn body(e: &BodyError) -> ErrorCode {
    match e {
        BodyError::EmptyText => ErrorCode::EmptyMessage,
        BodyError::TextTooLong { .. } => ErrorCode::MessageTooLong,
        BodyError::BadName(_) => ErrorCode::InvalidName,
        BodyError::BadRecipient => ErrorCode::InvalidPeer,
        BodyError::EmptyPlace | BodyError::PlaceTooLong { .. } | BodyError::PlaceNotOneLine => ErrorCode::InvalidPlace,
        _ => ErrorCode::Internal,
    }
}

fn group(e: &festival_core::group::GroupError) -> ErrorCode {
    use festival_core::group::GroupError;
    match e {
        GroupError::BadMembers => ErrorCode::InvalidGroupMembers,
        GroupError::BadMember => ErrorCode::InvalidPeer,
        GroupError::BadName => ErrorCode::InvalidGroupName,
        GroupError::Body(b) => body(b),
        GroupError::NotForMe | GroupError::OpenFailed | GroupError::Misbound => ErrorCode::Internal,
    }
}

fn send(e: &SendError) -> ErrorCode {
    match e {
        SendError::NotInRoom(_) => ErrorCode::NotJoined,
        SendError::Body(b) => body(b),
        // The app sends no announcements (the organiser's node does).
        SendError::Envelope(_)
        | SendError::NotOrganiser
        | SendError::AnnouncementEnd
        | SendError::AnnouncementsLimited => ErrorCode::Internal,
        SendError::MeetupTime => ErrorCode::InvalidMeetupTime,
        SendError::Group(g) => group(g),
        SendError::MeetupOver => ErrorCode::MeetupOver,
        SendError::Photo(festival_core::photo::PhotoError::Header(b)) => body(b),
        SendError::Photo(_) => ErrorCode::NotAPhoto,
    }
}

fn engine(e: &EngineError) -> ErrorCode {
    match e {
        EngineError::NoIdentity => ErrorCode::NotOnboarded,
        EngineError::Store(_) | EngineError::NotSaved(_) => ErrorCode::Storage,
        EngineError::Send(s) => send(s),
    }
}

impl From<NodeError> for AppError {
    fn from(e: NodeError) -> Self {
        let code = match &e {
            NodeError::Send(s) => send(s),
            NodeError::Engine(en) => engine(en),
            NodeError::Store(StoreError::TooManyChoices { .. }) => ErrorCode::TooManyChoices,
            NodeError::Store(StoreError::NotJoined(_)) => ErrorCode::NotJoined,
            NodeError::Store(StoreError::BadQuery(_)) => ErrorCode::InvalidSearch,
            NodeError::Store(_) => ErrorCode::Storage,
            NodeError::Room(_) => ErrorCode::InvalidRoom,
            NodeError::OwnCode => ErrorCode::OwnCode,
            NodeError::NoSuchMeetup => ErrorCode::NoSuchMeetup,
            NodeError::NotOurs => ErrorCode::NotYourMessage,
            NodeError::NotInGroup => ErrorCode::NotInGroup,
            NodeError::RetryTooSoon => ErrorCode::RetryTooSoon,
            NodeError::NoOneInReach => ErrorCode::NoOneInReach,
            NodeError::Stopped => ErrorCode::NodeStopped,
            NodeError::Photo(PhotoError::TooLarge { .. } | PhotoError::TooManyPixels(_)) => ErrorCode::PhotoTooLarge,
            NodeError::Photo(_) => ErrorCode::NotAPhoto,
            NodeError::NoSuchPhoto => ErrorCode::NoSuchPhoto,
            NodeError::PhotoIncomplete => ErrorCode::PhotoIncomplete,
            NodeError::PhotoDamaged => ErrorCode::PhotoDamaged,
        };
        let message = match code {
            ErrorCode::NotJoined => "Join the room before posting to it.".to_owned(),
            ErrorCode::EmptyMessage => "Type something first.".to_owned(),
            ErrorCode::OwnCode => "That is your own code: scan a friend's.".to_owned(),
            ErrorCode::InvalidMeetupTime => "Pick a time ahead, within the festival.".to_owned(),
            ErrorCode::MeetupOver => "That meet-up is over.".to_owned(),
            ErrorCode::NodeStopped => "Festival Chat is not running right now; try again in a moment.".to_owned(),
            ErrorCode::NotAPhoto => format!("That file cannot be sent as a photo: {e}."),
            ErrorCode::PhotoTooLarge => format!("That picture is too big to send: {e}."),
            ErrorCode::PhotoIncomplete => "The photo is still on its way.".to_owned(),
            _ => e.to_string(),
        };
        AppError::new(code, message)
    }
}

impl From<StartError> for AppError {
    fn from(e: StartError) -> Self {
        let code = match &e {
            StartError::Local(LocalError::AlreadyInitialised { .. }) => ErrorCode::AlreadyOnboarded,
            StartError::Local(LocalError::Engine(en)) | StartError::Engine(en) => engine(en),
            StartError::Local(LocalError::Room(_)) => ErrorCode::InvalidRoom,
            StartError::Local(_) => ErrorCode::Storage,
            StartError::NeedName => ErrorCode::NotOnboarded,
            StartError::BadFestival(_) => ErrorCode::InvalidFestival,
            StartError::Bind { .. } | StartError::Rtc(_) | StartError::Discovery(_) => ErrorCode::Network,
            StartError::RelayCa(_) => ErrorCode::InvalidRelayUrl,
        };
        AppError::new(code, e.to_string())
    }
}

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> Self {
        AppError::new(ErrorCode::Storage, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use festival_core::RoomId;

    #[test]
    fn errors_serialize_as_code_and_message() {
        let e = AppError::new(ErrorCode::InvalidRelayUrl, "nope");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"code": "invalid_relay_url", "message": "nope"})
        );
    }

    #[test]
    fn node_errors_map_to_the_codes_the_ui_branches_on() {
        let cases = [
            (NodeError::Send(SendError::Body(BodyError::EmptyText)), ErrorCode::EmptyMessage),
            (NodeError::Send(SendError::Body(BodyError::TextTooLong { len: 9, max: 1 })), ErrorCode::MessageTooLong),
            (NodeError::Send(SendError::NotInRoom(RoomId::festival())), ErrorCode::NotJoined),
            (NodeError::Engine(EngineError::NoIdentity), ErrorCode::NotOnboarded),
            (NodeError::Room(festival_core::IdError::BadRoom), ErrorCode::InvalidRoom),
            (NodeError::OwnCode, ErrorCode::OwnCode),
            (NodeError::Stopped, ErrorCode::NodeStopped),
        ];
        for (e, code) in cases {
            let app = AppError::from(e);
            assert_eq!(app.code, code, "{app:?}");
            assert!(!app.message.is_empty());
        }
    }

    #[test]
    fn start_errors_map_to_codes() {
        assert_eq!(AppError::from(StartError::NeedName).code, ErrorCode::NotOnboarded);
        assert_eq!(AppError::from(StartError::BadFestival("X".into())).code, ErrorCode::InvalidFestival);
        let bind = StartError::Bind { what: "UDP", source: std::io::Error::other("in use") };
        assert_eq!(AppError::from(bind).code, ErrorCode::Network);
    }
}
