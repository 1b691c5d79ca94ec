//! The one loop that carries out a core's outputs, for every host: the
//! node's engine (SQLite, async), the simulator and the tests (in memory).
//!
//! Each round commits every `Persist` waiting in the queue together (one
//! transaction, one fsync in the engine; the core tracks each as pending,
//! so it does not care how they are grouped), then carries out the other
//! outputs in order, then feeds the core what they led to (`Persisted`,
//! `Proved`, an instant `Loaded`) and goes on with what that returns, until
//! nothing is left. So the simulator sees the batching the product does,
//! not an answer to each envelope at once.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::{Input, Node, Now, Output, PersistError};
use crate::envelope::SignedEnvelope;

/// One envelope to commit: `Output::Persist`'s fields.
#[derive(Clone, Debug)]
pub struct ToPersist {
    pub envelope: SignedEnvelope,
    pub hops: u8,
    /// Ours: it joins the outbox.
    pub local: bool,
}

/// What a host does with the outputs that are not the core's own business.
pub trait Host {
    /// Both clocks, read when the core is fed what the outputs led to.
    fn now(&self) -> Now;

    /// Commit `batch` together; one result per envelope, in `batch`'s order.
    /// `node` is the core, to read (its identity opens sealed receipts).
    fn persist(&mut self, node: &Node, batch: Vec<ToPersist>) -> impl Future<Output = Vec<Result<(), PersistError>>>;

    /// Carry out one output other than `Persist`; the input it leads to, if
    /// any (a `Load` answered at once, a proof recorded, ...).
    fn carry_out(&mut self, node: &Node, output: Output) -> impl Future<Output = Option<Input>>;
}

/// Carry out `outputs` and everything that follows from them.
pub async fn drain<H: Host>(node: &mut Node, outputs: Vec<Output>, host: &mut H) {
    let deferred = run(node, outputs, host, false).await;
    debug_assert!(deferred.is_empty());
}

/// [`drain`] that commits nothing: everything but the commits is carried
/// out (and what it leads to), and the envelopes to commit are returned.
/// They stay pending in the core, which goes on taking other inputs
/// meanwhile (a copy of one of them arriving is not taken twice), until
/// the host feeds it `Input::Persisted` for each. A relay commits to a
/// shared database this way while it goes on delivering what its siblings
/// committed.
pub async fn drain_deferring<H: Host>(node: &mut Node, outputs: Vec<Output>, host: &mut H) -> Vec<ToPersist> {
    run(node, outputs, host, true).await
}

async fn run<H: Host>(node: &mut Node, outputs: Vec<Output>, host: &mut H, defer: bool) -> Vec<ToPersist> {
    let mut deferred = Vec::new();
    let mut work: VecDeque<Output> = outputs.into();
    while !work.is_empty() {
        let mut batch = Vec::new();
        let mut rest = Vec::new();
        for o in work.drain(..) {
            match o {
                Output::Persist { envelope, hops, local } => batch.push(ToPersist { envelope, hops, local }),
                other => rest.push(other),
            }
        }
        let mut follow = Vec::new();
        if defer {
            deferred.append(&mut batch);
        } else if !batch.is_empty() {
            let ids: Vec<_> = batch.iter().map(|p| p.envelope.id()).collect();
            let mut results = host.persist(node, batch).await.into_iter();
            for id in ids {
                // A host that answers short has not stored the rest.
                let result = results.next().unwrap_or_else(|| Err(PersistError::Failed("no answer".into())));
                follow.push(Input::Persisted { id, result });
            }
        }
        for o in rest {
            if let Some(input) = host.carry_out(node, o).await {
                follow.push(input);
            }
        }
        let now = host.now();
        for input in follow {
            work.extend(node.handle(input, now));
        }
    }
    deferred
}

/// [`drain`] for a host that never waits (an in-memory store): runs it to
/// the end at once. Panics if the host's work does wait.
pub fn drain_now<H: Host>(node: &mut Node, outputs: Vec<Output>, host: &mut H) {
    let mut run = pin!(drain(node, outputs, host));
    match run.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(()) => {}
        Poll::Pending => panic!("drain_now: the host's work waited"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PowerState;
    use crate::sync::{Config, Content, LinkKind};
    use crate::{Identity, LinkId, RoomId};
    use rand_core::SeedableRng;

    /// Records how persists were grouped; answers every one.
    #[derive(Default)]
    struct Recorder {
        batches: Vec<usize>,
        sends: usize,
        fail: bool,
    }

    impl Host for Recorder {
        fn now(&self) -> Now {
            Now { mono: 1_750_000_000_000, wall: 1_750_000_000_000 }
        }
        async fn persist(&mut self, _: &Node, batch: Vec<ToPersist>) -> Vec<Result<(), PersistError>> {
            self.batches.push(batch.len());
            let r = if self.fail { Err(PersistError::Failed("disk".into())) } else { Ok(()) };
            batch.iter().map(|_| r.clone()).collect()
        }
        async fn carry_out(&mut self, _: &Node, output: Output) -> Option<Input> {
            self.sends += usize::from(matches!(output, Output::Send { .. }));
            None
        }
    }

    fn node() -> Node {
        let id = Identity::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(3));
        Node::new(id, Config::default(), Default::default(), PowerState::Mains, 1_750_000_000_000)
    }

    #[test]
    fn persists_waiting_together_are_committed_together_and_answered() {
        let mut n = node();
        let now = Recorder::default().now();
        let mut out = Vec::new();
        for t in ["one", "two", "three"] {
            out.extend(n.send(RoomId::festival(), Content::Text(t.into()), now).expect("send").1);
        }
        n.handle(Input::LinkUp { link: LinkId(1), peer: crate::PeerId::from_bytes([7; 32]), kind: LinkKind::Lan }, now);
        let mut host = Recorder::default();
        drain_now(&mut n, out, &mut host);
        assert_eq!(host.batches, vec![3], "one commit for the three");
        assert_eq!(n.state_sizes().pending, 0, "each answered");
        let me = n.peer_id();
        assert_eq!(n.head(&RoomId::festival(), &me), (3, 3), "all three held");
    }

    #[test]
    fn deferred_commits_stay_pending_and_a_copy_meanwhile_is_not_taken_twice() {
        let mut author = node();
        let now = Recorder::default().now();
        let (_, out) = author.send(RoomId::festival(), Content::Text("later".into()), now).expect("send");
        let mut host = Recorder::default();
        let deferred = {
            let mut run = pin!(drain_deferring(&mut author, out, &mut host));
            let Poll::Ready(deferred) = run.as_mut().poll(&mut Context::from_waker(Waker::noop())) else {
                panic!("the host does not wait")
            };
            deferred
        };
        assert_eq!(deferred.len(), 1, "the commit is handed back");
        assert!(host.batches.is_empty(), "and not run");
        assert_eq!(author.state_sizes().pending, 1, "pending until answered");
        let me = author.peer_id();
        let envelope = deferred[0].envelope.clone();
        // The same envelope from a sibling meanwhile: held already.
        let out = committed(&mut author, envelope.clone());
        drain_now(&mut author, out, &mut host);
        assert_eq!(author.state_sizes().pending, 1, "still the one pending");
        let answered = author.handle(Input::Persisted { id: envelope.id(), result: Ok(()) }, now);
        drain_now(&mut author, answered, &mut host);
        assert_eq!(author.state_sizes().pending, 0);
        assert_eq!(author.head(&RoomId::festival(), &me), (1, 1), "held once answered");
        assert!(host.batches.is_empty(), "the host never committed it itself");
    }

    fn committed(n: &mut Node, envelope: SignedEnvelope) -> Vec<Output> {
        n.handle(Input::Committed { envelope, hops: 1 }, Recorder::default().now())
    }

    #[test]
    fn a_failed_commit_is_answered_as_failed() {
        let mut n = node();
        let now = Recorder::default().now();
        let (_, out) = n.send(RoomId::festival(), Content::Text("lost".into()), now).expect("send");
        let mut host = Recorder { fail: true, ..Default::default() };
        drain_now(&mut n, out, &mut host);
        assert_eq!(host.batches, vec![1]);
        assert_eq!(n.state_sizes().pending, 0, "answered, not left pending");
        let me = n.peer_id();
        assert_eq!(n.head(&RoomId::festival(), &me), (0, 0), "not held: the commit failed");
        assert_eq!(host.sends, 0, "nothing went out");
    }
}
