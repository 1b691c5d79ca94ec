//! A stored message as a person sees it: text, a DM opened for us (or by
//! us, its author), or a meet-up card with its answers, with the author's
//! name. Used by the runtime's events, its history pages and the offline CLI
//! alike.

use festival_core::body::{open_dm, Body, MeetupBody};
use festival_core::group::GroupContent;
use festival_core::{Identity, SignedEnvelope};
use std::collections::BTreeSet;

use festival_core::ReceiptStatus;
use festival_store::{Store, StoreError, StoredMessage};

use crate::names::Names;
use crate::runtime::events::{
    Delivery, MeetupPerson, MeetupView, MessageBody, MessageView, PhotoView, MAX_MEETUP_PEOPLE,
};

/// A stored message as a person sees it; `None` for what is not shown
/// (receipts, profiles, answers to meet-ups, meet-ups whose card has gone by
/// `now`, other people's sealed mail, sealed mail that does not open or
/// names another sender). Our own messages carry their delivery state from
/// the outbox and the receipts (only receipts the protocol lets count are
/// stored); `waiting` is left for the caller, who knows whether anyone is in
/// reach.
pub async fn view(
    store: &Store,
    me: &Identity,
    names: &Names,
    m: &StoredMessage,
    now: u64,
    delivery_timeout_ms: u64,
) -> Result<Option<MessageView>, StoreError> {
    let env = &m.envelope;
    let mine = env.author() == me.peer_id();
    let body = match env.parsed_body() {
        Body::Text(text) => MessageBody::Text { text },
        Body::SealedDm(s) => match open_dm(me, env) {
            Ok(text) => MessageBody::Direct { to: s.recipient, text },
            Err(_) => return Ok(None),
        },
        Body::SealedGroup(_) => {
            // Others' group mail is carried, not shown; so is a message
            // whose author was not a member when it came.
            let Ok(plain) = festival_core::group::open(me, env) else { return Ok(None) };
            if store.group_of_message(&env.id()).await?.is_none() {
                return Ok(None);
            }
            // The group's name as this device keeps it (set when it was
            // made), not what each message claims.
            let name = store.group(&plain.group).await?.map_or(plain.name, |g| g.name);
            let group = plain.group.to_hex();
            match plain.content {
                GroupContent::Text(text) => MessageBody::Group { group, name, text },
                GroupContent::Members => MessageBody::GroupMembers { group, name, members: plain.members },
                GroupContent::Added(added) => MessageBody::GroupAdded { group, name, added },
                GroupContent::Left => MessageBody::GroupLeft { group },
            }
        }
        Body::Photo(p) => MessageBody::Photo(photo_view(store, env, p).await?),
        Body::Meetup(meetup) if meetup.end() <= now => return Ok(None),
        Body::Meetup(meetup) => MessageBody::Meetup(meetup_view(store, me, names, env, meetup).await?),
        // Announcements are shown pinned, apart from any room's history;
        // answers to meet-ups on their cards.
        // A photo's chunks are shown with their header.
        Body::Receipt(_)
        | Body::Profile(_)
        | Body::SealedReceipt(_)
        | Body::Announcement(_)
        | Body::MeetupReply(_)
        | Body::PhotoChunk(_) => return Ok(None),
    };
    let delivery = if mine { Some(delivery(store, env, now, delivery_timeout_ms).await?) } else { None };
    Ok(Some(MessageView {
        id: env.id(),
        room: env.room().clone(),
        author: env.author(),
        sender: names.author(&env.author()),
        seq: env.seq(),
        created_at: env.created_at(),
        received_at: m.received_at,
        body,
        hops: m.hops,
        mine,
        delivery,
    }))
}

/// Where one of our messages stands (see [`Delivery::compute`]); `waiting`
/// is left for the caller, who knows whether anyone is in reach.
pub async fn delivery(
    store: &Store,
    env: &SignedEnvelope,
    now: u64,
    delivery_timeout_ms: u64,
) -> Result<Delivery, StoreError> {
    let marks = store.outbox_marks(&env.id()).await?;
    let (mut got, mut read) = (BTreeSet::new(), BTreeSet::new());
    for (peer, status, _) in store.receipts_for(&env.id()).await? {
        // Reading implies having it.
        got.insert(peer);
        if status == ReceiptStatus::Read {
            read.insert(peer);
        }
    }
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    // A receipt proves it left, even if the outbox mark was lost.
    let mut d = Delivery::compute(
        marks.as_ref(),
        count(got.len()),
        count(read.len()),
        env.room().is_direct(),
        env.created_at(),
        now,
        delivery_timeout_ms,
    );
    d.as_of = crate::runtime::events::next_as_of(now);
    Ok(d)
}

/// A photo's message: its thumbnail, and whether its chunks are all here
/// (counted, not checked: [`crate::runtime::NodeHandle::photo`] checks
/// them against the header's hash when the photo is opened).
async fn photo_view(
    store: &Store,
    env: &SignedEnvelope,
    p: festival_core::photo::PhotoBody,
) -> Result<PhotoView, StoreError> {
    use base64::Engine as _;
    let n = p.chunks() as u64;
    let held = store.count_range(env.room(), &env.author(), env.seq() + 1, env.seq() + n).await?;
    Ok(PhotoView {
        caption: p.caption,
        width: p.width,
        height: p.height,
        bytes: p.size,
        thumb: format!("data:image/jpeg;base64,{}", base64::engine::general_purpose::STANDARD.encode(&p.thumb)),
        complete: held == n,
    })
}

/// A meet-up's card: its answers as the store tallies them (complete
/// counts, at most [`MAX_MEETUP_PEOPLE`] people by name).
async fn meetup_view(
    store: &Store,
    me: &Identity,
    names: &Names,
    env: &festival_core::SignedEnvelope,
    m: MeetupBody,
) -> Result<MeetupView, StoreError> {
    let my_id = me.peer_id();
    let max = u32::try_from(MAX_MEETUP_PEOPLE).unwrap_or(u32::MAX);
    let tally = store.meetup_tally(&env.id(), env.room(), &my_id, max).await?;
    let mut people: Vec<MeetupPerson> = tally
        .people
        .into_iter()
        .map(|(peer, answer)| MeetupPerson { peer, me: peer == my_id, who: names.author(&peer), answer })
        .collect();
    // Us first, then verified contacts, then named people, by name.
    let rank = |p: &MeetupPerson| (!p.me, !p.who.verified, p.who.name.is_none());
    people.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.who.name.cmp(&b.who.name)).then(a.peer.cmp(&b.peer)));
    let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let until = m.end();
    Ok(MeetupView {
        place: m.place,
        at: m.at,
        until,
        coming: count(tally.coming),
        cant: count(tally.cant),
        mine: tally.mine,
        people,
    })
}

/// A group as the UI shows it: its members named, us first.
pub fn group_view(
    r: festival_store::GroupRecord,
    me: &festival_core::PeerId,
    names: &Names,
) -> crate::runtime::events::GroupView {
    use crate::runtime::events::{GroupMember, GroupView};
    let mut members: Vec<GroupMember> =
        r.members.iter().map(|p| GroupMember { peer: *p, me: p == me, who: names.author(p) }).collect();
    members.sort_by(|a, b| (!a.me, &a.who.name, a.peer).cmp(&(!b.me, &b.who.name, b.peer)));
    GroupView { id: r.id.to_hex(), name: r.name, members, left: r.left, muted: r.muted, last_activity: r.last_activity }
}
