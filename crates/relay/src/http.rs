//! The HTTP side: the WebSocket endpoint (`/v1/relay`), `/healthz` and
//! `/metrics`. Connection caps are checked before the upgrade, so a refused
//! connection costs one HTTP response: 503 when the relay is full (or has
//! too many sockets still authenticating), 429 when that host has too many
//! sockets open (or still authenticating).

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use festival_engine::wire::relay::RELAY_PATH;

use crate::limits::SlotRefusal;
use crate::Shared;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(RELAY_PATH, get(relay))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(shared)
}

async fn relay(
    State(s): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    let slots = s.slots.try_acquire(addr.ip()).and_then(|slot| {
        // Held until the socket authenticates (or is closed).
        let pending = s.unauthenticated.try_acquire(addr.ip())?;
        Ok((slot, pending))
    });
    match slots {
        Err(refusal) => refused(&s, refusal),
        Ok((slot, pending)) => {
            // Messages up to twice the limit are read whole and refused with
            // a clean close (1009); beyond that the socket is dropped unread.
            let hard = s.max_message * 2;
            let ip = addr.ip();
            ws.max_message_size(hard)
                .max_frame_size(hard)
                .read_buffer_size(festival_engine::wire::relay::WS_READ_BUFFER)
                .on_upgrade(move |socket| crate::conn::serve(socket, ip, slot, pending, s))
        }
    }
}

fn refused(s: &Shared, refusal: SlotRefusal) -> Response {
    s.metrics.reject(refusal.label());
    let status = StatusCode::from_u16(refusal.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (status, refusal.label()).into_response()
}

/// 200 while the relay can take and acknowledge messages. An instance of a
/// cluster also says whether the shared store (PostgreSQL) and the bus
/// (Redis) answer: without the store it cannot acknowledge anything (503);
/// without the bus it still serves, and learns of the other instances'
/// messages from the store (200).
async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    let m = &s.metrics;
    if !m.hub_up.load(Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "store not running\n").into_response();
    }
    if !m.clustered.load(Relaxed) {
        return (StatusCode::OK, "ok\n").into_response();
    }
    let reach = |up: bool| if up { "reachable" } else { "unreachable" };
    let store_up = m.store_up.load(Relaxed);
    let bus = if s.cfg.bus.is_some() { reach(m.bus_up.load(Relaxed)) } else { "none" };
    let body = format!("{}\nstore: {}\nbus: {bus}\n", if store_up { "ok" } else { "down" }, reach(store_up));
    let status = if store_up { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, body).into_response()
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    s.metrics.unauthenticated.store(s.unauthenticated.in_use() as i64, Relaxed);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render()).into_response()
}
