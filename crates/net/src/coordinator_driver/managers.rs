//! Manager ids spread over coordinator processes (D7, X7): which node messages
//! and viewers this process serves, and where the others go.
//!
//! - A node's `Register` and `Heartbeat` carry its manager id. A process that
//!   does not hold that id — a holder of another, a standby, a spare — answers
//!   `ServedElsewhere` with the address etcd's map gives for the id (`None`
//!   while no one holds it: the node tries again shortly), and the machine
//!   never reads the message.
//! - `/watch/<channel>` for a channel this process does not serve is
//!   redirected to the `/watch` of the process holding the channel's manager
//!   (the map's `channel/<name>`).
//! - While it leads, the process writes the channels its machine serves into
//!   the map, so that every other process can send their viewers on.
//! - A node just registered is told every live coordinator process (the map's
//!   `member/` keys, `Message::Coordinators`), so one address is enough to
//!   start it with.
//!
//! Without an election one process serves every id.

use super::Driver;
use crate::etcd::{Directory, Leadership};
use crate::http::WatchAnswer;
use tiercast_proto::viewer_feed::ViewerFeed;
use tiercast_proto::Message;

/// The manager id a node message names, when it names one.
pub(super) fn named_manager(msg: &Message) -> Option<u16> {
    match msg {
        Message::Register(r) => Some(r.manager_id),
        Message::Heartbeat(h) => Some(h.manager_id),
        _ => None,
    }
}

/// `/watch` at `holder` for `channel`, with the viewer's query kept.
pub(super) fn watch_at(
    holder: &str,
    channel: &str,
    region: Option<&str>,
    feed: &ViewerFeed,
) -> WatchAnswer {
    let mut query = feed.query();
    if let Some(r) = region {
        query.push(if query.is_empty() { '?' } else { '&' });
        query.push_str(&format!("region={r}"));
    }
    WatchAnswer::Redirect(format!("http://{holder}/watch/{channel}.ts{query}"))
}

impl Driver {
    /// The map as last read from etcd (empty without an election).
    pub(super) fn directory(&self) -> Directory {
        self.directory
            .as_ref()
            .map(|d| d.borrow().clone())
            .unwrap_or_default()
    }

    /// The manager id this process's machine serves: `None` when it has no
    /// machine or runs without an election (then it serves every id).
    pub(super) fn held_manager(&self) -> Option<u16> {
        self.machine.as_ref()?;
        // Read in place: this runs for every node message.
        match &*self.leadership.as_ref()?.borrow() {
            Leadership::Leader { manager, .. } => Some(*manager),
            Leadership::Standby { .. } => None,
        }
    }

    /// Whether a message naming `manager` is for another process.
    pub(super) fn not_mine(&self, manager: u16) -> bool {
        self.leadership.is_some() && self.held_manager() != Some(manager)
    }

    /// Where the holder of `manager` is, when it is not this process.
    pub(super) fn holder_of(&self, manager: u16) -> Option<String> {
        let d = self.directory.as_ref()?.borrow();
        d.holders
            .get(&manager)
            .filter(|a| **a != self.advertise)
            .cloned()
    }

    /// Where the process serving `channel` is, when it is not this one.
    pub(super) fn channel_elsewhere(&self, channel: &str) -> Option<String> {
        let d = self.directory.as_ref()?.borrow();
        d.channel_holder(channel)
            .filter(|a| *a != self.advertise)
            .map(str::to_string)
    }

    /// What this process stands for, as `/status` says it.
    pub(super) fn stands_for(&self) -> Option<String> {
        self.stands_for.map(|c| c.to_string())
    }

    /// The map, as `/status` shows it.
    pub(super) fn directory_json(&self) -> serde_json::Value {
        let d = self.directory();
        serde_json::json!({
            "holders": d.holders.iter().map(|(id, a)| (id.to_string(), serde_json::Value::from(a.as_str()))).collect::<serde_json::Map<_, _>>(),
            "channels": d.channels,
        })
    }

    /// After its `Registered`, a node is told every live coordinator process
    /// (X7: a node given one address learns the others). Nothing without an
    /// election, or while the map lists no one.
    pub(super) fn send_coordinators(&mut self, to: tiercast_proto::NodeId) {
        let d = self.directory();
        if d.members.is_empty() {
            return;
        }
        let addrs: Vec<String> = d
            .members
            .into_iter()
            .take(tiercast_proto::MAX_COORDINATORS)
            .collect();
        if let Err(e) = self.links.send(to, Message::Coordinators { addrs }) {
            self.send_errors += 1;
            tracing::debug!(%to, error = %e, "send failed");
        }
    }

    /// Writes the channels the machine serves to the map (only when they change).
    pub(super) fn publish_served(&mut self) {
        let (Some(tx), Some(m)) = (&self.served, &self.machine) else {
            return;
        };
        // Compared in place: this runs after every drain.
        let same = {
            let cur = tx.borrow();
            cur.len() == m.channels().count()
                && cur.iter().zip(m.channels()).all(|(a, c)| *a == c.desc.name)
        };
        if !same {
            tx.send_replace(m.channels().map(|c| c.desc.name.clone()).collect());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiercast_proto::{Heartbeat, Register};

    #[test]
    fn registers_and_heartbeats_name_their_manager_and_nothing_else_does() {
        let hb = Heartbeat {
            manager_id: 3,
            ..Heartbeat::default()
        };
        assert_eq!(named_manager(&Message::Heartbeat(hb)), Some(3));
        let reg = Register {
            role: tiercast_proto::NodeRole::Relay,
            tier: 1,
            region: String::new(),
            capacity: 1,
            addr: String::new(),
            http_addr: String::new(),
            uplink_kbps: 0,
            class: tiercast_proto::NodeClass::default(),
            incarnation: 1,
            manager_id: 7,
        };
        assert_eq!(named_manager(&Message::Register(reg)), Some(7));
        let announce = Message::Announce {
            channel_name: "live".into(),
            public_key: [0; 32],
            channel: None,
            backup: false,
        };
        assert_eq!(named_manager(&announce), None);
    }

    #[test]
    fn a_watch_elsewhere_keeps_the_viewers_query() {
        let WatchAnswer::Redirect(to) =
            watch_at("10.0.0.2:7000", "live", Some("eu"), &ViewerFeed::default())
        else {
            panic!("a redirect")
        };
        assert!(to.starts_with("http://10.0.0.2:7000/watch/live.ts"), "{to}");
        assert!(to.ends_with("region=eu"), "{to}");
    }
}
