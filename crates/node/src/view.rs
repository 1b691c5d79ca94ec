//! A stored message as a person sees it: text, or a DM opened for us (or by
//! us, its author), with the author's name. Used by the runtime's events, its
//! history pages and the offline CLI alike.

use festival_core::body::{open_dm, open_own_dm, Body};
use festival_core::Identity;
use festival_store::{Store, StoreError, StoredMessage};

use crate::runtime::events::{MessageBody, MessageView};

/// A stored message as a person sees it; `None` for what is not shown
/// (receipts, profiles, other people's sealed mail).
pub async fn view(store: &Store, me: &Identity, m: &StoredMessage) -> Result<Option<MessageView>, StoreError> {
    let env = &m.envelope;
    let mine = env.author() == me.peer_id();
    let body = match env.parsed_body() {
        Body::Text(text) => MessageBody::Text { text },
        Body::SealedDm(s) if mine => match open_own_dm(me, &s) {
            Ok(text) => MessageBody::Direct { to: s.recipient, text },
            Err(_) => return Ok(None),
        },
        Body::SealedDm(s) => match open_dm(me, &env.author(), &s) {
            Ok(text) => MessageBody::Direct { to: s.recipient, text },
            Err(_) => return Ok(None),
        },
        Body::Receipt(_) | Body::Profile(_) => return Ok(None),
    };
    let author_name = store.peer(&env.author()).await?.and_then(|p| p.name);
    Ok(Some(MessageView {
        id: env.id(),
        room: env.room().clone(),
        author: env.author(),
        author_name,
        seq: env.seq(),
        created_at: env.created_at(),
        received_at: m.received_at,
        body,
        hops: m.hops,
        mine,
    }))
}
