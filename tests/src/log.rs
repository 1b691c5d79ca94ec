//! What a node printed, line by line, and the questions tests ask of it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::Value;

/// One line of a node's stdout.
#[derive(Clone, Debug)]
pub struct Line {
    /// Which run of the process printed it: 0 for the first, +1 per restart.
    pub epoch: u32,
    pub at: Instant,
    pub raw: String,
    /// The line as JSON, if it is JSON (events, `/status`, `/peers`).
    pub json: Option<Value>,
}

impl Line {
    /// The `event` field of an event line.
    pub fn event(&self) -> Option<&str> {
        self.json.as_ref()?.get("event")?.as_str()
    }
}

/// Everything a node printed so far, across restarts.
#[derive(Clone, Debug, Default)]
pub struct Log {
    pub lines: Vec<Line>,
    /// The epoch of the process now running (or last run).
    pub epoch: u32,
    /// The current epoch's stdout has closed: the process is gone.
    pub closed: bool,
}

impl Log {
    /// Event lines of one kind (`"message"`, `"link_up"` ...), all epochs.
    pub fn events<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.lines.iter().filter(move |l| l.event() == Some(kind)).filter_map(|l| l.json.as_ref())
    }

    /// Events of one kind printed by the current run only.
    pub fn events_now<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.lines
            .iter()
            .filter(move |l| l.epoch == self.epoch && l.event() == Some(kind))
            .filter_map(|l| l.json.as_ref())
    }

    /// The first event of `kind` printed at or after line `from`.
    pub fn event_after(&self, from: usize, kind: &str) -> Option<&Value> {
        self.lines.get(from..)?.iter().find(|l| l.event() == Some(kind)).and_then(|l| l.json.as_ref())
    }

    /// How many times each message id was shown (`message` events).
    pub fn message_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for m in self.events("message") {
            if let Some(id) = m["id"].as_str() {
                *counts.entry(id.to_owned()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Whether message `id` was shown.
    pub fn has_message(&self, id: &str) -> bool {
        self.events("message").any(|m| m["id"] == id)
    }

    pub fn has_all(&self, ids: &[String]) -> bool {
        let counts = self.message_counts();
        ids.iter().all(|id| counts.contains_key(id))
    }

    /// The `message` event for `id`, if shown.
    pub fn message(&self, id: &str) -> Option<&Value> {
        self.events("message").find(|m| m["id"] == id)
    }

    /// The relay's PeerId once this run's relay link is up.
    pub fn relay_up(&self) -> Option<String> {
        self.events_now("link_up").find(|e| e["path"] == "relay").and_then(|e| e["peer"].as_str()).map(str::to_owned)
    }

    /// The path (`lan`, `relay`) by which our message `id` left, once sent.
    pub fn sent_path(&self, id: &str) -> Option<String> {
        self.events("sent").find(|e| e["id"] == id).and_then(|e| e["path"].as_str()).map(str::to_owned)
    }

    /// Peers with a link open now, replaying `link_up`/`link_down` of the
    /// current run.
    pub fn linked(&self) -> BTreeSet<String> {
        let mut up = BTreeSet::new();
        for l in self.lines.iter().filter(|l| l.epoch == self.epoch) {
            let peer = || l.json.as_ref().and_then(|j| j["peer"].as_str()).unwrap_or_default().to_owned();
            match l.event() {
                Some("link_up") => {
                    up.insert(peer());
                }
                Some("link_down") => {
                    up.remove(&peer());
                }
                _ => {}
            }
        }
        up
    }

    /// Peers ever linked with, in any run.
    pub fn ever_linked(&self) -> BTreeSet<String> {
        self.events("link_up").filter_map(|e| e["peer"].as_str()).map(str::to_owned).collect()
    }

    /// Peers discovered over mDNS in the current run.
    pub fn discovered(&self) -> BTreeSet<String> {
        self.events_now("discovered").filter_map(|e| e["peer"].as_str()).map(str::to_owned).collect()
    }

    /// The last `n` lines, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        let start = self.lines.len().saturating_sub(n);
        let mut s = String::new();
        for l in &self.lines[start..] {
            let raw: String = l.raw.chars().take(300).collect();
            s.push_str(&format!("  [{}] {raw}\n", l.epoch));
        }
        s
    }
}
