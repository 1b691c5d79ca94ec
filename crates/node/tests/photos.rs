//! Photos between real nodes (mDNS, signed signaling, WebRTC data channels,
//! inside a private network namespace): Ana picks a big PNG with a caption;
//! it is made to fit (1600 px, a JPEG of at most 256 KiB), shown to her at
//! once, and reaches Ben and Cy whole (a `PhotoReady` event, or a message
//! already complete), byte for byte; bad input is a typed error and the
//! node goes on. Run with scripts/test.

mod common;

use std::io::Cursor;

use common::{three_linked, until};
use festival_core::sync::SendError;
use festival_core::{MessageId, RoomId};
use festival_node::discovery::MdnsHub;
use festival_node::photo::PhotoError;
use festival_node::runtime::{MessageBody, NodeError, NodeEvent, NodeHandle, PhotoView};

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (f64::from(x) - f64::from(w) / 2.0, f64::from(y) - f64::from(h) / 2.0);
        let ring = ((dx * dx + dy * dy).sqrt() / 9.0).sin() * 60.0 + 128.0;
        image::Rgb([(x * 255 / w) as u8, ring as u8, (y * 255 / h) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn photo_view(node: &NodeHandle, id: &MessageId) -> Option<PhotoView> {
    match node.message(id).await.unwrap()?.body {
        MessageBody::Photo(p) => Some(p),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_reaches_everyone_whole_and_bad_pictures_are_typed_errors() {
    festival_node::netns::require_private_netns();
    let hub = MdnsHub::new(&[]).expect("mDNS hub");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (ana, ben, cy) = three_linked(&hub, &dirs).await;
    let room = RoomId::festival();

    // Bad input: a typed error, nothing sent, the node goes on.
    let text = ana.send_photo(room.clone(), b"not a picture at all".to_vec(), "").await;
    assert!(matches!(text, Err(NodeError::Photo(PhotoError::NotAnImage))), "{text:?}");
    let elsewhere = ana.send_photo("elsewhere".parse().unwrap(), png(40, 30), "").await;
    assert!(matches!(elsewhere, Err(NodeError::Engine(_) | NodeError::Send(SendError::NotInRoom(_)))), "{elsewhere:?}");
    let long = ana.send_photo(room.clone(), png(40, 30), &"x".repeat(1001)).await;
    assert!(matches!(long, Err(NodeError::Send(SendError::Body(_)))), "{long:?}");
    assert!(matches!(ana.photo(&MessageId::from_bytes([7; 32])).await, Err(NodeError::NoSuchPhoto)));

    let mut ben_events = ben.events();
    let id = ana.send_photo(room.clone(), png(2000, 1500), "  the stage from the hill ").await.unwrap();
    let mine = photo_view(&ana, &id).await.expect("a photo");
    assert_eq!((mine.width, mine.height, mine.caption.as_str()), (1600, 1200, "the stage from the hill"));
    assert!(mine.complete && mine.thumb.starts_with("data:image/jpeg;base64,"));
    let jpeg = ana.photo(&id).await.unwrap();
    assert!(jpeg.len() <= festival_core::photo::MAX_PHOTO_BYTES && jpeg.len() as u32 == mine.bytes);
    let shown = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((shown.width(), shown.height()), (1600, 1200));

    for n in [&ben, &cy] {
        until("the whole photo at the others'", async || photo_view(n, &id).await.is_some_and(|p| p.complete)).await;
        assert_eq!(n.photo(&id).await.unwrap(), jpeg, "byte for byte");
    }
    // Ben was told: the photo came whole in one message, or its thumbnail
    // first and then `PhotoReady`.
    let mut whole = false;
    while let Ok(ev) = ben_events.try_recv() {
        match ev {
            NodeEvent::Message(m) | NodeEvent::PhotoReady(m) if m.id == id => {
                whole |= matches!(m.body, MessageBody::Photo(ref p) if p.complete);
            }
            _ => {}
        }
    }
    assert!(whole, "Ben's app learnt the photo is whole");
    // A text after it is shown (delivered) at the others' as usual.
    let mut cy_events = cy.events();
    let after = ana.send(room.clone(), "nice, right?".into()).await.unwrap();
    let shown = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            match cy_events.recv().await {
                Ok(NodeEvent::Message(m)) if m.id == after => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("Cy's events ended: {e}"),
            }
        }
    });
    shown.await.expect("the text after the photo shown at Cy's");
    for n in [ana, ben, cy] {
        n.shutdown().await;
    }
}
