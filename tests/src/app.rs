//! The desktop app under WebDriver: an Xvfb display, `tauri-driver` (which
//! runs WebKitWebDriver, which starts the app's WebView) and screenshots.
//!
//! Everything here runs in the test's own network namespace, which must be a
//! private one ([`festival_node::netns::require_private_netns`]): the app
//! announces itself over mDNS on every interface it sees. Each process is
//! killed when its guard drops, also while a failed test unwinds, and dies
//! with the test process (`PR_SET_PDEATHSIG`).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sys;

/// Where the display, the driver and the app get to come up.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// `target/<profile>/festival-chat`, beside the test executable.
pub fn app_binary() -> PathBuf {
    sys::built_binary(
        "festival-chat",
        "FESTIVAL_APP_BIN",
        "npm --prefix ui run build && cargo build -p festival-chat --features custom-protocol",
    )
}

/// A program the E2E test needs, by name on `PATH` (or an absolute path).
pub fn require_program(name: &str, hint: &str) -> PathBuf {
    let found = if name.starts_with('/') {
        Some(PathBuf::from(name)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
            .unwrap_or_default()
    };
    found.unwrap_or_else(|| panic!("{name} not found: {hint}"))
}

/// A child process killed on drop.
pub struct Guard {
    pub name: &'static str,
    child: Child,
    pub log: PathBuf,
}

impl Guard {
    fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> Guard {
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // Its own process group: tauri-driver starts WebKitWebDriver, which
        // starts the app; dropping the guard kills all of them.
        cmd.process_group(0);
        sys::die_with_parent(&mut cmd);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Guard { name, child, log }
    }

    /// Panics (with the process's output) if it has exited.
    pub fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}):\n{}", self.name, self.tail());
        }
    }

    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the group this guard's child leads.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An Xvfb server on a free display number.
pub struct Display {
    pub number: u32,
    _server: Guard,
}

impl Display {
    pub fn start(logs: &Path) -> Display {
        let xvfb = require_program("Xvfb", "apt-get install xvfb");
        let number =
            (90..200).find(|n| !Path::new(&format!("/tmp/.X{n}-lock")).exists()).expect("a free X display number");
        let mut cmd = Command::new(xvfb);
        cmd.arg(format!(":{number}")).args(["-screen", "0", "1280x800x24", "-nolisten", "tcp"]);
        let mut server = Guard::spawn("Xvfb", cmd, logs.join("xvfb.log"));
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
        wait_until("the X display", START_TIMEOUT, || {
            server.check_alive();
            socket.exists()
        });
        Display { number, _server: server }
    }

    pub fn env(&self) -> String {
        format!(":{}", self.number)
    }
}

/// `tauri-driver` on a free loopback port; the WebDriver URL to connect to.
pub struct Driver {
    pub url: String,
    pub process: Guard,
}

impl Driver {
    /// `env` reaches the app: tauri-driver passes its environment on to
    /// WebKitWebDriver, which starts the app.
    pub fn start(display: &Display, logs: &Path, env: &[(&str, &str)]) -> Driver {
        let tauri_driver = require_program(
            "tauri-driver",
            "cargo install tauri-driver --version '^2' --locked (and put ~/.cargo/bin on PATH)",
        );
        let native = require_program("WebKitWebDriver", "apt-get install webkit2gtk-driver");
        let (port, native_port) = (free_port(), free_port());
        let mut cmd = Command::new(tauri_driver);
        cmd.args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
            .arg("--native-driver")
            .arg(native)
            .env("DISPLAY", display.env())
            .env_remove("WAYLAND_DISPLAY")
            .envs(env.iter().copied());
        let mut process = Guard::spawn("tauri-driver", cmd, logs.join("tauri-driver.log"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_until("tauri-driver's port", START_TIMEOUT, || {
            process.check_alive();
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        Driver { url: format!("http://127.0.0.1:{port}"), process }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// Polls `done` every 50 ms until it holds; panics after `within`.
pub fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let by = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < by, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How a screenshot looks, enough to tell a drawn window from a blank one.
#[derive(Debug)]
pub struct Looks {
    pub width: u32,
    pub height: u32,
    /// Distinct colours among sampled pixels.
    pub colours: usize,
    /// Share of sampled pixels that have the most common colour.
    pub dominant: f64,
}

impl Looks {
    /// A chat window has text, buttons and panels: many colours and no
    /// single colour covering nearly everything.
    pub fn is_blank(&self) -> bool {
        self.colours < 16 || self.dominant > 0.97
    }
}

/// Decodes a PNG screenshot and samples every 4th pixel of every 4th row.
pub fn looks(png_bytes: &[u8]) -> Looks {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG screenshot");
    let mut buf = vec![0; reader.output_buffer_size().expect("PNG size")];
    let frame = reader.next_frame(&mut buf).expect("PNG pixels");
    let channels = frame.color_type.samples();
    let (w, h) = (frame.width as usize, frame.height as usize);
    let mut counts = std::collections::HashMap::<[u8; 3], usize>::new();
    let mut total = 0;
    for y in (0..h).step_by(4) {
        for x in (0..w).step_by(4) {
            let i = (y * w + x) * channels;
            let px = &buf[i..i + channels];
            let rgb = if channels >= 3 { [px[0], px[1], px[2]] } else { [px[0]; 3] };
            *counts.entry(rgb).or_default() += 1;
            total += 1;
        }
    }
    let top = counts.values().copied().max().unwrap_or(0);
    Looks {
        width: frame.width,
        height: frame.height,
        colours: counts.len(),
        dominant: if total == 0 { 1.0 } else { top as f64 / total as f64 },
    }
}

/// `artifacts/` at the repository root: CI keeps what the E2E test saves.
pub fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// A notification as the desktop's notification service was asked to show
/// it (`org.freedesktop.Notifications.Notify`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    pub app: String,
    pub summary: String,
    pub body: String,
}

struct NotificationService {
    shown: std::sync::Arc<std::sync::Mutex<Vec<Shown>>>,
}

/// The parts of the freedesktop.org notification spec the Tauri plugin
/// calls: a real server on the bus, which records what it is asked to show.
#[zbus::interface(name = "org.freedesktop.Notifications")]
impl NotificationService {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        _hints: std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut shown = self.shown.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        shown.push(Shown { app: app_name, summary, body });
        u32::try_from(shown.len()).unwrap_or(u32::MAX)
    }

    fn close_notification(&self, _id: u32) {}

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".to_owned()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        ("festival-lab".to_owned(), "festival".to_owned(), "1".to_owned(), "1.2".to_owned())
    }
}

/// A private D-Bus session bus (`dbus-daemon`, its socket in the test's
/// dir) with a notification service on it: give the app
/// `DBUS_SESSION_BUS_ADDRESS` = [`Notifications::address`] and read what it
/// raised with [`Notifications::shown`].
pub struct Notifications {
    address: String,
    shown: std::sync::Arc<std::sync::Mutex<Vec<Shown>>>,
    _connection: zbus::blocking::Connection,
    _bus: Guard,
}

impl Notifications {
    pub fn start(dir: &Path) -> Notifications {
        let daemon = require_program("dbus-daemon", "apt-get install dbus-daemon");
        let socket = dir.join("session-bus");
        let address = format!("unix:path={}", socket.display());
        let mut cmd = Command::new(daemon);
        cmd.args(["--session", "--nofork", "--nopidfile", "--address"]).arg(&address);
        let mut bus = Guard::spawn("dbus-daemon", cmd, dir.join("dbus-daemon.log"));
        wait_until("the session bus", START_TIMEOUT, || {
            bus.check_alive();
            socket.exists()
        });
        let shown = std::sync::Arc::default();
        let service = NotificationService { shown: std::sync::Arc::clone(&shown) };
        let connection = zbus::blocking::connection::Builder::address(address.as_str())
            .and_then(|b| b.name("org.freedesktop.Notifications"))
            .and_then(|b| b.serve_at("/org/freedesktop/Notifications", service))
            .and_then(|b| b.build())
            .unwrap_or_else(|e| panic!("no notification service on the session bus: {e}"));
        Notifications { address, shown, _connection: connection, _bus: bus }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// Everything shown so far, oldest first.
    pub fn shown(&self) -> Vec<Shown> {
        self.shown.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}
