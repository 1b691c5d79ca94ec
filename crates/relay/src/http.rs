//! The HTTP side: the WebSocket endpoint (`/v1/relay`), `/healthz` and
//! `/metrics`. Connection caps are checked before the upgrade, so a refused
//! connection costs one HTTP response: 503 when the relay is full, 429 when
//! that address has too many sockets open.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use festival_node::relay::wire::RELAY_PATH;

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
    match s.slots.try_acquire(addr.ip()) {
        Err(refusal) => {
            s.metrics.reject(refusal.label());
            let status = match refusal {
                SlotRefusal::Full => StatusCode::SERVICE_UNAVAILABLE,
                SlotRefusal::PerIp => StatusCode::TOO_MANY_REQUESTS,
            };
            (status, refusal.label()).into_response()
        }
        Ok(slot) => {
            // Messages up to twice the limit are read whole and refused with
            // a clean close (1009); beyond that the socket is dropped unread.
            let hard = s.max_message * 2;
            let ip = addr.ip();
            ws.max_message_size(hard)
                .max_frame_size(hard)
                .on_upgrade(move |socket| crate::conn::serve(socket, ip, slot, s))
        }
    }
}

async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    if s.metrics.hub_up.load(Relaxed) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store not running\n").into_response()
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render()).into_response()
}
