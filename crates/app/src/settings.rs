//! The settings a person can change, checked before anything is applied, and
//! kept as JSON in the data dir (written to a temporary file and renamed, so
//! a crash leaves the old file or the new one, never half of one). On Unix
//! the file is the owner's only (0600) and so is the data dir (0700): it
//! says which relay and festival this device trusts.

use std::path::{Path, PathBuf};

use festival_core::body::MAX_NAME_BYTES;
use festival_core::PeerId;
use festival_node::runtime::config::{check_festival, DEFAULT_FESTIVAL};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, ErrorCode};

/// File name of the settings inside the data dir.
pub const SETTINGS_FILE: &str = "settings.json";
/// Largest peer limit a person may set: each link costs a data channel and
/// sync traffic, and past a few dozen a laptop only relays for others.
pub const MAX_PEER_LIMIT: u32 = 32;
/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const MAX_INTERFACE_BYTES: usize = 15;
/// A relay URL longer than this is a paste gone wrong.
const MAX_URL_BYTES: usize = 512;
/// Relay instances in the setting: a festival runs a handful.
const MAX_RELAY_URLS: usize = 8;
/// Mode of the settings file on Unix: the owner reads and writes it, nobody
/// else (another user must not learn or change the pinned relay).
pub const SETTINGS_FILE_MODE: u32 = 0o600;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct Settings {
    /// Display name; empty until the first start picks one.
    pub name: String,
    /// Only devices of the same festival link up.
    pub festival: String,
    /// `wss://host[:port][/path]`; several instances of the relay: their
    /// URLs separated by spaces (or commas), tried in turn. `None`: no
    /// relay, LAN only.
    pub relay_url: Option<String>,
    /// The relay's identity, pinned (its PeerId, 64 hex digits): a relay
    /// that cannot prove this key is refused. `None`: any relay that proves
    /// its key.
    pub relay_id: Option<String>,
    /// The festival's organiser key (its PeerId, 64 hex digits, as the
    /// festival publishes it): the only author whose announcements are
    /// shown. `None`: none are.
    pub organiser: Option<String>,
    /// Most links at once; `None`: what the power policy allows.
    pub peer_limit: Option<u32>,
    /// Network interfaces to use; empty: all.
    pub interfaces: Vec<String>,
    /// Disk the messages may use, in MiB; `None`: 512, which fits a phone.
    pub storage_mb: Option<u32>,
    /// The festival's message lifetime in hours (its length): older
    /// messages are deleted and no longer passed on; `None`: a week.
    pub message_lifetime_hours: Option<u32>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            name: String::new(),
            festival: DEFAULT_FESTIVAL.to_owned(),
            relay_url: None,
            relay_id: None,
            organiser: None,
            peer_limit: None,
            interfaces: Vec::new(),
            storage_mb: None,
            message_lifetime_hours: None,
        }
    }
}

/// Smallest storage budget: below it the store's log alone would not fit.
pub const MIN_STORAGE_MB: u32 = 64;
/// Largest storage budget a person may set (64 GiB): beyond it a typo.
pub const MAX_STORAGE_MB: u32 = 65_536;
/// Longest message lifetime (a year): festivals are days long.
pub const MAX_LIFETIME_HOURS: u32 = 24 * 366;

fn invalid(code: ErrorCode, message: impl Into<String>) -> AppError {
    AppError::new(code, message)
}

/// A display name: trimmed, then the protocol's rules (festival_core::name),
/// each with a message a person can act on.
pub fn check_name(name: &str) -> Result<String, AppError> {
    use festival_core::name::NameProblem;
    let name = name.trim();
    let message = match festival_core::name::check_name(name) {
        Ok(()) => return Ok(name.to_owned()),
        Err(NameProblem::Empty) => "Pick a name so people know who is writing.".to_owned(),
        Err(NameProblem::TooLong) => format!("Names are at most {MAX_NAME_BYTES} bytes; pick a shorter one."),
        Err(NameProblem::Invisible) => {
            "Names cannot hold invisible or direction-changing characters, tabs or line breaks.".to_owned()
        }
        Err(NameProblem::Spacing) => "Use single spaces between the words of your name.".to_owned(),
        Err(NameProblem::Marks) => "Too many accents on one letter.".to_owned(),
        Err(NameProblem::ClaimsVerified) => {
            "Names cannot claim to be verified or official: the app shows who is verified.".to_owned()
        }
    };
    Err(invalid(ErrorCode::InvalidName, message))
}

/// One relay URL, or several instances' separated by spaces or commas
/// (each checked; kept space-separated).
fn check_relay_url(urls: &str) -> Result<Option<String>, AppError> {
    // Split as the node splits them (`RelayClientConfig::several`).
    let list = festival_node::relay::relay_urls(urls);
    if list.len() > MAX_RELAY_URLS {
        let message = format!("At most {MAX_RELAY_URLS} relay URLs.");
        return Err(invalid(ErrorCode::InvalidRelayUrl, message));
    }
    let ok = list.into_iter().map(check_one_relay_url).collect::<Result<Vec<_>, _>>()?;
    let ok: Vec<String> = ok.into_iter().flatten().collect();
    Ok(if ok.is_empty() { None } else { Some(ok.join(" ")) })
}

fn check_one_relay_url(url: &str) -> Result<Option<String>, AppError> {
    let url = url.trim();
    if url.is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| invalid(ErrorCode::InvalidRelayUrl, format!("Relay URL {url:?} {why}."));
    if url.len() > MAX_URL_BYTES {
        return Err(bad("is too long"));
    }
    let rest = url
        .strip_prefix("wss://")
        .or_else(|| url.strip_prefix("ws://"))
        .ok_or_else(|| bad("must start with wss:// (or ws:// on a trusted network)"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_ok = !host.is_empty()
        && !host.starts_with(':')
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    if !host_ok || rest.chars().any(char::is_whitespace) {
        return Err(bad("has no valid host"));
    }
    if let Some((_, port)) = host.rsplit_once(':').filter(|_| !host.ends_with(']')) {
        if !host.starts_with('[') && port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad("has an invalid port"));
        }
    }
    Ok(Some(url.to_owned()))
}

/// A key as a person pastes it (a relay's id, the organiser's): 64 hex
/// digits, any case, spaces around ignored, and a public key (not just any
/// 32 bytes). Kept lowercase. `what` names it in the error.
fn check_key(id: &str, code: ErrorCode, what: &str) -> Result<Option<String>, AppError> {
    let id = id.trim();
    if id.is_empty() {
        return Ok(None);
    }
    let peer =
        id.to_ascii_lowercase().parse::<PeerId>().ok().filter(festival_core::identity::is_valid_key).ok_or_else(
            || {
                let shown: String = id.chars().take(80).collect();
                invalid(code, format!("{shown:?} is not {what}: it is 64 letters a-f and digits."))
            },
        )?;
    Ok(Some(peer.to_hex()))
}

impl Settings {
    /// The pinned relay id, parsed (settings are kept validated, so a bad
    /// one only comes from a `Settings` that skipped [`Settings::validated`]).
    pub fn relay_peer_id(&self) -> Option<PeerId> {
        self.relay_id.as_deref().and_then(|id| id.parse().ok())
    }

    /// The organiser key, parsed (as [`Settings::relay_peer_id`]).
    pub fn organiser_peer_id(&self) -> Option<PeerId> {
        self.organiser.as_deref().and_then(|id| id.parse().ok())
    }

    /// Check every field; returns the settings as they will be kept (trimmed,
    /// empty relay URL as `None`, interfaces without duplicates). The first
    /// problem found is the error.
    pub fn validated(&self) -> Result<Settings, AppError> {
        let name = if self.name.trim().is_empty() { String::new() } else { check_name(&self.name)? };
        let festival = self.festival.trim().to_owned();
        check_festival(&festival).map_err(|_| {
            invalid(
                ErrorCode::InvalidFestival,
                format!("Festival id {festival:?} must be 1 to 32 characters of a-z, 0-9, '-', '_' or '.'."),
            )
        })?;
        let relay_url = match &self.relay_url {
            Some(u) => check_relay_url(u)?,
            None => None,
        };
        let relay_id = match &self.relay_id {
            Some(id) => check_key(id, ErrorCode::InvalidRelayId, "a relay's id (as the relay shows it)")?,
            None => None,
        };
        let organiser = match &self.organiser {
            Some(id) => check_key(id, ErrorCode::InvalidOrganiser, "an organiser key (as the festival publishes it)")?,
            None => None,
        };
        if let Some(n) = self.peer_limit {
            if !(1..=MAX_PEER_LIMIT).contains(&n) {
                return Err(invalid(ErrorCode::InvalidPeerLimit, format!("Peer limit must be 1 to {MAX_PEER_LIMIT}.")));
            }
        }
        if let Some(mb) = self.storage_mb {
            if !(MIN_STORAGE_MB..=MAX_STORAGE_MB).contains(&mb) {
                return Err(invalid(
                    ErrorCode::InvalidStorage,
                    format!("Storage must be {MIN_STORAGE_MB} to {MAX_STORAGE_MB} MiB."),
                ));
            }
        }
        if let Some(h) = self.message_lifetime_hours {
            if !(1..=MAX_LIFETIME_HOURS).contains(&h) {
                return Err(invalid(
                    ErrorCode::InvalidStorage,
                    format!("Messages must be kept 1 to {MAX_LIFETIME_HOURS} hours."),
                ));
            }
        }
        let mut interfaces: Vec<String> = Vec::new();
        for i in &self.interfaces {
            let i = i.trim();
            let ok = !i.is_empty()
                && i.len() <= MAX_INTERFACE_BYTES
                && i.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
            if !ok {
                return Err(invalid(ErrorCode::InvalidInterface, format!("{i:?} is not a network interface name.")));
            }
            if !interfaces.iter().any(|x| x == i) {
                interfaces.push(i.to_owned());
            }
        }
        Ok(Settings {
            name,
            festival,
            relay_url,
            relay_id,
            organiser,
            peer_limit: self.peer_limit,
            interfaces,
            storage_mb: self.storage_mb,
            message_lifetime_hours: self.message_lifetime_hours,
        })
    }

    /// Whether going from `self` to `new` needs the node restarted (a new
    /// name does not: it is announced by the running node).
    pub fn needs_restart(&self, new: &Settings) -> bool {
        self.festival != new.festival
            || self.relay_url != new.relay_url
            || self.relay_id != new.relay_id
            || self.organiser != new.organiser
            || self.peer_limit != new.peer_limit
            || self.interfaces != new.interfaces
            || self.storage_mb != new.storage_mb
            || self.message_lifetime_hours != new.message_lifetime_hours
    }

    /// The store's budget and lifetime these settings ask for.
    pub fn retention(&self) -> festival_node::retention::Retention {
        festival_node::retention::Retention::with_limits(
            u64::from(self.storage_mb.unwrap_or(512)),
            u64::from(self.message_lifetime_hours.unwrap_or(168)),
        )
    }

    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(SETTINGS_FILE)
    }

    /// The saved settings, or the defaults if none were saved. A file that
    /// does not parse (edited by hand) is kept aside and replaced by the
    /// defaults rather than keeping the app from starting.
    pub fn load(data_dir: &Path) -> Result<Settings, AppError> {
        let path = Self::path(data_dir);
        let raw = match std::fs::read(&path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(e) => return Err(e.into()),
        };
        // A file from an older version may be readable by others.
        make_private(&path)?;
        match serde_json::from_slice::<Settings>(&raw)
            .map_err(|e| e.to_string())
            .and_then(|s| s.validated().map_err(|e| e.message))
        {
            Ok(s) => Ok(s),
            Err(why) => {
                let aside = path.with_extension("json.bad");
                tracing::warn!(path = %path.display(), %why, "settings unreadable; kept aside, using defaults");
                std::fs::rename(&path, &aside)?;
                Ok(Settings::default())
            }
        }
    }

    /// Write atomically and durably.
    pub fn save(&self, data_dir: &Path) -> Result<(), AppError> {
        use std::io::Write;
        festival_node::datadir::create_private_dir(data_dir)?;
        let path = Self::path(data_dir);
        let tmp = path.with_extension("json.tmp");
        let mut f = create_private(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(self).map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }
}

/// Create (or truncate) `path` for writing, owner-only on Unix: made with
/// [`SETTINGS_FILE_MODE`], and narrowed to it if it was left over (a crash
/// between write and rename) with a wider mode.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, SETTINGS_FILE_MODE);
    let f = open.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if f.metadata()?.permissions().mode() & 0o777 != SETTINGS_FILE_MODE {
            f.set_permissions(std::fs::Permissions::from_mode(SETTINGS_FILE_MODE))?;
        }
    }
    Ok(f)
}

/// Narrow an existing file to [`SETTINGS_FILE_MODE`] (Unix).
fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(path)?.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(SETTINGS_FILE_MODE))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut Settings)) -> Result<Settings, AppError> {
        let mut s = Settings { name: "Ana".into(), ..Settings::default() };
        f(&mut s);
        s.validated()
    }

    fn code(r: Result<Settings, AppError>) -> ErrorCode {
        r.expect_err("should be refused").code
    }

    #[test]
    fn defaults_are_valid_and_join_the_default_festival() {
        let s = Settings::default().validated().unwrap();
        assert_eq!(s.festival, DEFAULT_FESTIVAL);
        assert_eq!(s.relay_url, None);
    }

    #[test]
    fn a_festival_id_that_does_not_parse_is_a_typed_error() {
        for bad in ["", "Glasto 26", "UPPER", "x".repeat(33).as_str(), "fest/ival"] {
            assert_eq!(code(with(|s| s.festival = bad.into())), ErrorCode::InvalidFestival, "{bad:?}");
        }
        assert_eq!(with(|s| s.festival = " glasto26 ".into()).unwrap().festival, "glasto26");
    }

    #[test]
    fn relay_urls_must_be_websocket_urls_with_a_host() {
        for bad in
            ["http://relay.example", "relay.example", "wss://", "wss://:443", "wss://a b", "wss://h:0", "wss://h:99999"]
        {
            assert_eq!(code(with(|s| s.relay_url = Some(bad.into()))), ErrorCode::InvalidRelayUrl, "{bad:?}");
        }
        for good in ["wss://relay.example", "ws://10.0.0.2:8080/ws", "wss://[fe80::1]:443/x"] {
            assert_eq!(with(|s| s.relay_url = Some(good.into())).unwrap().relay_url.as_deref(), Some(good));
        }
        assert_eq!(with(|s| s.relay_url = Some("  ".into())).unwrap().relay_url, None);
        // Several instances: each checked, kept once each, space-separated.
        let several = with(|s| s.relay_url = Some(" wss://a.example, wss://b.example:8443  wss://a.example ".into()));
        assert_eq!(several.unwrap().relay_url.as_deref(), Some("wss://a.example wss://b.example:8443"));
        assert_eq!(code(with(|s| s.relay_url = Some("wss://a.example, http://b".into()))), ErrorCode::InvalidRelayUrl);
        let nine = (0..9).map(|i| format!("wss://r{i}.example")).collect::<Vec<_>>().join(" ");
        assert_eq!(code(with(|s| s.relay_url = Some(nine))), ErrorCode::InvalidRelayUrl);
    }

    #[test]
    fn a_relay_id_must_be_a_peer_id_and_is_kept_lowercase() {
        /// A real Ed25519 public key (RFC 8032, test 1).
        const KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let not_a_key = "ab".repeat(32);
        for bad in ["relay", "d75a98", &KEY[1..], &format!("{KEY}00"), &"g".repeat(64), &not_a_key, "festival:x"] {
            let err = with(|s| s.relay_id = Some(bad.into())).expect_err(bad);
            assert_eq!(err.code, ErrorCode::InvalidRelayId, "{bad:?}");
            assert!(err.message.contains("64"), "{}", err.message);
        }
        let s = with(|s| s.relay_id = Some(format!("  {}  ", KEY.to_uppercase()))).unwrap();
        assert_eq!(s.relay_id.as_deref(), Some(KEY));
        assert_eq!(s.relay_peer_id(), Some(KEY.parse().unwrap()));
        assert_eq!(with(|s| s.relay_id = Some(" ".into())).unwrap().relay_id, None);
        // Pinning another relay restarts the node, like another URL.
        assert!(Settings::default().needs_restart(&s));
    }

    #[test]
    fn an_organiser_key_must_be_a_peer_id_and_changing_it_restarts_the_node() {
        const KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        for bad in ["gate crew", &KEY[1..], &"ab".repeat(32)] {
            let err = with(|s| s.organiser = Some(bad.into())).expect_err(bad);
            assert_eq!(err.code, ErrorCode::InvalidOrganiser, "{bad:?}");
            assert!(err.message.contains("organiser key"), "{}", err.message);
        }
        let s = with(|s| s.organiser = Some(format!(" {} ", KEY.to_uppercase()))).unwrap();
        assert_eq!(s.organiser_peer_id(), Some(KEY.parse().unwrap()));
        assert_eq!(with(|s| s.organiser = Some("".into())).unwrap().organiser, None);
        assert!(Settings::default().needs_restart(&s));
    }

    #[test]
    fn names_peer_limits_and_interfaces_are_checked() {
        assert_eq!(code(with(|s| s.name = "x".repeat(49))), ErrorCode::InvalidName);
        assert_eq!(code(with(|s| s.peer_limit = Some(0))), ErrorCode::InvalidPeerLimit);
        assert_eq!(code(with(|s| s.peer_limit = Some(MAX_PEER_LIMIT + 1))), ErrorCode::InvalidPeerLimit);
        assert_eq!(code(with(|s| s.interfaces = vec!["wlan0 eth0".into()])), ErrorCode::InvalidInterface);
        assert_eq!(code(with(|s| s.interfaces = vec!["averyveryverylongname".into()])), ErrorCode::InvalidInterface);
        let s = with(|s| s.interfaces = vec!["wlan0".into(), " wlan0 ".into(), "eth0".into()]).unwrap();
        assert_eq!(s.interfaces, vec!["wlan0", "eth0"]);
    }

    #[test]
    fn settings_survive_a_save_and_a_load_and_garbage_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Settings::load(dir.path()).unwrap(), Settings::default());
        let s = with(|s| {
            s.festival = "glasto26".into();
            s.peer_limit = Some(4);
        })
        .unwrap();
        s.save(dir.path()).unwrap();
        assert_eq!(Settings::load(dir.path()).unwrap(), s);
        std::fs::write(Settings::path(dir.path()), b"{not json").unwrap();
        assert_eq!(Settings::load(dir.path()).unwrap(), Settings::default());
        assert!(dir.path().join("settings.json.bad").exists());
    }

    #[cfg(unix)]
    #[test]
    fn the_settings_file_and_its_dir_are_the_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("chat.festival.desktop");
        let s = with(|s| s.relay_url = Some("wss://relay.example".into())).unwrap();
        s.save(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700, "the data dir");
        assert_eq!(mode(&Settings::path(&dir)), 0o600, "the settings file");

        // Files an older version left readable by others: a stale temporary
        // file is rewritten owner-only, and a loaded settings file narrowed.
        let tmp = Settings::path(&dir).with_extension("json.tmp");
        std::fs::write(&tmp, b"{}").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        s.save(&dir).unwrap();
        assert_eq!((mode(&dir), mode(&Settings::path(&dir))), (0o700, 0o600));
        std::fs::set_permissions(Settings::path(&dir), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(Settings::load(&dir).unwrap(), s);
        assert_eq!(mode(&Settings::path(&dir)), 0o600);
    }
}
