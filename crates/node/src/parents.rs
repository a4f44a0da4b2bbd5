//! Parent links of one channel (V9, the ProxyParent table of V3): each parent is
//! assigned (known, not logged in), connecting (LOGIN sent), connected (LOGIN
//! accepted) or disconnecting. A switch adds the new parent with the list of
//! parents it replaces; those are dropped only once the new one is connected.

use std::collections::BTreeMap;
use tiercast_proto::{Feed, NodeId, PeerInfo, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParentState {
    Assigned,
    Connecting,
    Connected,
    Disconnecting,
}

#[derive(Clone, Debug)]
pub struct ParentLink {
    pub info: PeerInfo,
    pub state: ParentState,
    pub last_seq: Option<u64>,
    pub last_block_at: Option<Timestamp>,
    pub blocks: u64,
    /// Parents to drop once this one is connected (connect before disconnect).
    pub replaces: Vec<NodeId>,
    /// Reported to the coordinator as downgraded (V10); cleared when it delivers again.
    pub downgraded: bool,
    /// When the parent accepted our LOGIN.
    pub connected_at: Option<Timestamp>,
    /// What the parent pushes on this link (D3, D4).
    pub feed: Feed,
}

#[derive(Clone, Debug, Default)]
pub struct Parents {
    links: BTreeMap<NodeId, ParentLink>,
}

impl Parents {
    pub fn assign(&mut self, info: PeerInfo) {
        self.links
            .entry(info.id)
            .and_modify(|l| l.info = info.clone())
            .or_insert(ParentLink {
                info,
                state: ParentState::Assigned,
                last_seq: None,
                last_block_at: None,
                blocks: 0,
                replaces: Vec::new(),
                downgraded: false,
                connected_at: None,
                feed: Feed::All,
            });
    }

    /// Assigns `info` with a feed; returns whether the feed changed on a known link.
    pub fn assign_feed(&mut self, info: PeerInfo, feed: Feed) -> bool {
        let id = info.id;
        let known = self.links.contains_key(&id);
        self.assign(info);
        let link = self.links.get_mut(&id).expect("just assigned");
        let changed = known && link.feed != feed;
        link.feed = feed;
        changed
    }

    pub fn get(&self, id: NodeId) -> Option<&ParentLink> {
        self.links.get(&id)
    }

    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut ParentLink> {
        self.links.get_mut(&id)
    }

    pub fn remove(&mut self, id: NodeId) -> Option<ParentLink> {
        self.links.remove(&id)
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.links.contains_key(&id)
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.links.keys().copied().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &ParentLink)> {
        self.links.iter()
    }

    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Parents in a given state.
    pub fn in_state(&self, state: ParentState) -> Vec<NodeId> {
        self.links
            .iter()
            .filter(|(_, l)| l.state == state)
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn set_state(&mut self, id: NodeId, state: ParentState) {
        if let Some(l) = self.links.get_mut(&id) {
            l.state = state;
        }
    }

    /// Marks `id` connected; returns the parents it replaces, now to be dropped.
    pub fn connected(&mut self, id: NodeId, now: Timestamp) -> Vec<NodeId> {
        let Some(l) = self.links.get_mut(&id) else {
            return Vec::new();
        };
        l.state = ParentState::Connected;
        l.connected_at = Some(now);
        let replaced = std::mem::take(&mut l.replaces);
        replaced
            .into_iter()
            .filter(|r| *r != id && self.links.contains_key(r))
            .collect()
    }
}
