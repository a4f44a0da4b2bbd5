//! Local viewers of the audio-only feed (C3, provider rule "audio before video"):
//! a relay takes them in slots of their own, `NodeConfig::audio_capacity` over all
//! channels, beside its `capacity` of full-feed viewers, since an audio viewer
//! costs a few percent of a full one's bytes. They are no load (no DISTRIBUTE,
//! they do not fill the relay for full-feed viewers), but they keep the relay
//! logged in at its parents. The driver filters their TS (`tiercast_media::
//! AudioOnlyFilter`); they leave through `Node::viewer_logoff` like any viewer.

use crate::event::Event;
use crate::node::Node;
use tiercast_proto::{ChannelId, DenyReason, Timestamp, ViewerId};

impl Node {
    /// Audio-only viewers over all channels now.
    pub fn audio_viewers(&self) -> u32 {
        self.channels
            .values()
            .map(|c| c.children.audio_viewers.len() as u32)
            .sum()
    }

    /// A local viewer of `channel_name`'s audio-only feed joins: `Full` when the
    /// audio slots are taken, otherwise as `viewer_login`.
    pub fn audio_viewer_login(
        &mut self,
        now: Timestamp,
        channel_name: &str,
    ) -> Result<(ChannelId, ViewerId), DenyReason> {
        let channel = self.channel_named(channel_name)?;
        if self.audio_viewers() >= self.cfg.audio_capacity {
            return Err(DenyReason::Full);
        }
        let ch = self.channels.get(&channel).ok_or(DenyReason::NotActive)?;
        if ch.consolidated || self.cfg.role == tiercast_proto::NodeRole::Viewer {
            return Err(DenyReason::NotActive);
        }
        let viewer = ViewerId(self.next_viewer);
        self.next_viewer += 1;
        let ch = self.channels.get_mut(&channel).expect("checked just above");
        ch.children.audio_viewers.insert(viewer);
        self.events
            .push_back(Event::ViewerJoined { channel, viewer });
        self.ensure_logged_in(now, channel);
        Ok((channel, viewer))
    }
}

#[cfg(test)]
mod tests {
    use crate::node::Node;
    use crate::NodeConfig;
    use tiercast_proto::{ChannelDesc, ChannelId, DenyReason, Message, NodeId, Timestamp};

    fn relay(capacity: u32, audio_capacity: u32) -> Node {
        let cfg = NodeConfig {
            id: NodeId(5),
            capacity,
            max_threshold: capacity,
            min_threshold: 0,
            audio_capacity,
            ..NodeConfig::default()
        };
        let mut node = Node::new(cfg, Timestamp(0));
        let desc = ChannelDesc {
            id: ChannelId(1),
            name: "live".into(),
            public_key: [0; 32],
        };
        node.handle_message(
            Timestamp(0),
            tiercast_proto::COORDINATOR_ID,
            Message::ParentSet {
                channel: desc,
                version: 1,
                placement: tiercast_proto::Placement::Tier {
                    tier: 1,
                    activate: true,
                },
                parents: vec![],
            },
        );
        node
    }

    #[test]
    fn audio_viewers_take_their_own_slots_and_are_no_load() {
        let mut node = relay(1, 2);
        let (ch, full) = node
            .viewer_login(Timestamp(1), "live")
            .expect("one full slot");
        assert_eq!(
            node.viewer_login(Timestamp(1), "live"),
            Err(DenyReason::Full)
        );
        let (_, a1) = node
            .audio_viewer_login(Timestamp(1), "live")
            .expect("audio slot 1");
        node.audio_viewer_login(Timestamp(1), "live")
            .expect("audio slot 2");
        assert_eq!(
            node.audio_viewer_login(Timestamp(1), "live"),
            Err(DenyReason::Full)
        );
        assert_eq!(node.machine_load(), 1, "audio viewers are no load");
        node.viewer_logoff(Timestamp(2), ch, a1);
        assert_eq!(node.audio_viewers(), 1);
        node.audio_viewer_login(Timestamp(2), "live")
            .expect("a freed audio slot");
        // The full viewer leaves: the audio viewers still hold the channel.
        node.viewer_logoff(Timestamp(3), ch, full);
        assert!(node.channel(ch).is_some());
        assert!(!node.channel(ch).unwrap().children.is_empty());
        assert_eq!(
            node.audio_viewer_login(Timestamp(3), "other"),
            Err(DenyReason::NotActive)
        );
    }
}
