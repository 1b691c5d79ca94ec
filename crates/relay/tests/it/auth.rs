//! Authentication: a node proves its identity key by signing the relay's
//! challenge; anything else is refused with a clear close code and counted.

use crate::common;

use common::*;
use festival_node::relay::wire::{close, RelayMsg};
use festival_node::relay::{RelayConnection, RelayError};

#[tokio::test]
async fn a_node_that_signs_the_challenge_is_welcomed_and_the_relay_proves_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;
    let me = identity();
    let conn = RelayConnection::connect(&client_config(&relay.url()), &me).await.expect("authenticated");
    assert_eq!(conn.welcome.peer, me.peer_id());
    assert_ne!(conn.relay, me.peer_id());
    assert_eq!(relay.metric("festival_relay_authenticated_total").await, 1);
    eventually("the connection is counted", || async { relay.metric("festival_relay_connections ").await == 1 }).await;

    // Pinning the relay's id: the right one connects, another is refused.
    let mut pinned = client_config(&relay.url());
    pinned.relay_id = Some(conn.relay);
    RelayConnection::connect(&pinned, &identity()).await.expect("the pinned relay");
    pinned.relay_id = Some(me.peer_id());
    let err = RelayConnection::connect(&pinned, &identity()).await.err().expect("another relay is refused");
    assert!(matches!(err, RelayError::WrongRelay { .. }), "{err:?}");
    relay.stop().await;
}

#[tokio::test]
async fn silence_or_a_frame_before_authenticating_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;

    let (mut silent, _) = raw(relay.addr).await;
    assert_eq!(close_code(&mut silent).await, close::AUTH_REQUIRED, "no proof within the auth timeout");

    let (mut eager, _) = raw(relay.addr).await;
    send(&mut eager, &RelayMsg::Frame(vec![1, 0])).await;
    assert_eq!(close_code(&mut eager).await, close::AUTH_REQUIRED, "a frame instead of a proof");

    assert_eq!(relay.rejections("auth_required").await, 2);
    assert_eq!(relay.metric("festival_relay_authenticated_total").await, 0);
    relay.stop().await;
}

#[tokio::test]
async fn a_bad_signature_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;
    let (me, mallory) = (identity(), identity());
    let (mut ws, challenge) = raw(relay.addr).await;
    // Mallory signs a proof that claims to be `me`.
    let RelayMsg::Auth { sig, .. } = proof(&mallory, &challenge, FESTIVAL) else { unreachable!() };
    let RelayMsg::Auth { proof: claimed, .. } = proof(&me, &challenge, FESTIVAL) else { unreachable!() };
    send(&mut ws, &RelayMsg::Auth { proof: claimed, sig }).await;
    assert_eq!(close_code(&mut ws).await, close::BAD_SIGNATURE);
    assert_eq!(relay.rejections("bad_signature").await, 1);
    relay.stop().await;
}

#[tokio::test]
async fn a_proof_replayed_on_another_connection_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;
    let me = identity();
    let (mut first, c1) = raw(relay.addr).await;
    let captured = proof(&me, &c1, FESTIVAL);
    send(&mut first, &captured).await;
    assert!(matches!(next_msg(&mut first).await, Some(RelayMsg::Welcome { .. })));

    // Someone who saw that proof replays it on a connection of their own.
    let (mut replay, c2) = raw(relay.addr).await;
    assert_ne!(c1.nonce, c2.nonce, "every connection gets a fresh challenge");
    send(&mut replay, &captured).await;
    assert_eq!(close_code(&mut replay).await, close::WRONG_CHALLENGE);
    assert_eq!(relay.rejections("wrong_challenge").await, 1);
    relay.stop().await;
}

#[tokio::test]
async fn another_festival_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(test_config(dir.path())).await;
    let me = identity();
    let (mut ws, c) = raw(relay.addr).await;
    send(&mut ws, &proof(&me, &c, "otherfest")).await;
    assert_eq!(close_code(&mut ws).await, close::WRONG_FESTIVAL);
    assert_eq!(relay.rejections("wrong_festival").await, 1);

    // The client reports it as permanent: retrying cannot help.
    let mut cfg = client_config(&relay.url());
    cfg.festival = "otherfest".into();
    let err = RelayConnection::connect(&cfg, &me).await.err().unwrap();
    assert!(err.is_permanent(), "{err:?}");
    relay.stop().await;
}
