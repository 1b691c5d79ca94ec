//! festival-chat: the desktop app. A thin Tauri v2 shell over
//! `festival_app::App`: it finds the data dir, starts the node with the
//! app's defaults, registers the commands and stops the node on exit.
//!
//! # Layout
//! - [`commands`]: one `#[tauri::command]` per `App` method, and `register`
//!   (which also adds the notification plugin).
//! - this file: [`run`], start-up (data dir, options from the environment,
//!   logging), desktop notifications (`festival_app::notify` decides, the
//!   plugin shows; the window's focus is passed on) and shutdown.
//!
//! Defaults: SQLite and settings in the app data dir
//! (`~/.local/share/chat.festival.desktop`, or `$FESTIVAL_DATA_DIR`), the
//! identity made on first start once the person picks a name, the festival
//! room, LAN discovery on every interface, no relay.

pub mod commands;

use std::path::PathBuf;

use festival_app::{App, AppOptions, Notification};
use festival_node::power::parse_power;
use festival_node::runtime::PowerConfig;
use tauri::Manager;

/// Where the app keeps its data: `$FESTIVAL_DATA_DIR`, else Tauri's app
/// data dir.
fn data_dir<R: tauri::Runtime>(app: &tauri::App<R>) -> Result<PathBuf, Box<dyn std::error::Error>> {
    match std::env::var_os("FESTIVAL_DATA_DIR") {
        Some(d) if !d.is_empty() => Ok(PathBuf::from(d)),
        _ => Ok(app.path().app_data_dir()?),
    }
}

/// `FESTIVAL_POWER=mains|battery:NN` fixes the power reading (demos, tests);
/// otherwise the battery is read.
fn options_from_env() -> AppOptions {
    let power = match std::env::var("FESTIVAL_POWER") {
        Ok(p) => match parse_power(&p) {
            Ok(p) => PowerConfig::Fixed(p),
            Err(e) => {
                tracing::warn!(value = %p, error = %e, "FESTIVAL_POWER ignored");
                PowerConfig::Auto
            }
        },
        Err(_) => PowerConfig::Auto,
    };
    AppOptions { power, ..AppOptions::default() }
}

/// Show one notification through the Tauri notification plugin (on Linux
/// the desktop's notification service, over D-Bus). A desktop without one
/// loses the notification, not the message: it is logged.
fn show<R: tauri::Runtime>(handle: &tauri::AppHandle<R>, n: &Notification) {
    use tauri_plugin_notification::NotificationExt;
    let shown = handle.notification().builder().title(&n.title).body(&n.body).show();
    match shown {
        Ok(()) => tracing::info!(kind = ?n.kind, count = n.count, "notification raised"),
        Err(e) => tracing::warn!(kind = ?n.kind, error = %e, "notification not shown"),
    }
}

/// Open the backend in `dir` and start the node if an identity exists. A
/// node that cannot start (e.g. no network) leaves the app usable: the UI
/// shows why.
pub fn start_backend(dir: &std::path::Path, options: AppOptions) -> Result<App, festival_app::AppError> {
    let app = App::new(dir, options)?;
    if let Err(e) = tauri::async_runtime::block_on(app.start()) {
        tracing::error!(code = ?e.code, error = %e.message, "node not started");
    }
    Ok(app)
}

#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();

    let app = commands::register(tauri::Builder::default())
        .setup(|app| {
            let dir = data_dir(app)?;
            tracing::info!(dir = %dir.display(), "data dir");
            let backend = start_backend(&dir, options_from_env())?;
            let handle = app.handle().clone();
            // On Tauri's runtime; it lives as long as the app.
            let notifier = backend.clone();
            tauri::async_runtime::spawn(async move {
                let _ = notifier.notifications(move |n| show(&handle, &n)).await;
            });
            app.manage(backend);
            Ok(())
        })
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::Focused(focused) = event {
                if let Some(backend) = window.try_state::<App>() {
                    backend.set_focus(*focused);
                }
            }
        })
        .build(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("Festival Chat could not start: {e}");
            std::process::exit(1)
        });
    app.run(|handle, event| {
        if let tauri::RunEvent::Exit = event {
            // Say goodbye on mDNS and close the store before the process ends.
            if let Some(backend) = handle.try_state::<App>() {
                tauri::async_runtime::block_on(backend.shutdown());
            }
        }
    });
}
