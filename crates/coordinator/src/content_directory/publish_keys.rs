//! Publish keys kept by the coordinator (X1, X3, issue 17): per channel name,
//! the SHA-256 digests of the keys an encoder may publish with. An operator sets
//! them (the driver's signed `POST /publish-keys/<channel>`, kept in the
//! coordinator's store); the coordinator sends them to the channel's origin when
//! it announces, to its standby when it stands by, and to both whenever they
//! change, so keys rotate without restarting anything. A key set before its
//! channel is announced waits for the announce. The coordinator never sees a key
//! itself, only its digest; the origin hashes what a publisher gives.
//!
//! Bounds: at most [`MAX_PUBLISH_KEYS`] per channel, at most the coordinator's
//! `max_channels` channel names with keys.

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use std::collections::BTreeMap;
use tiercast_proto::{Message, NodeId, MAX_PUBLISH_KEYS};

/// A key's SHA-256 digest.
pub type KeyDigest = [u8; 32];

/// Per channel name, its keys' digests (no entry: no key from the coordinator).
#[derive(Clone, Debug, Default)]
pub struct PublishKeyBook {
    by_name: BTreeMap<String, Vec<KeyDigest>>,
}

impl PublishKeyBook {
    /// The digests set for `name` (empty: none).
    pub fn get(&self, name: &str) -> &[KeyDigest] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// Every channel name with keys, and its digests.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[KeyDigest])> {
        self.by_name.iter().map(|(n, d)| (n.as_str(), d.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// Why a set of publish keys was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishKeysError {
    #[error("invalid channel name {0:?}: use 1-64 characters of A-Z a-z 0-9 _ -")]
    BadChannel(String),
    #[error("{0} keys: at most {MAX_PUBLISH_KEYS} per channel")]
    TooMany(usize),
    #[error("keys are kept for at most {0} channels")]
    TooManyChannels(usize),
}

impl Coordinator {
    /// The publish keys kept for every channel name (read-only view; the
    /// driver saves it in its store).
    pub fn publish_keys(&self) -> &PublishKeyBook {
        &self.publish_keys
    }

    /// Sets `name`'s publish keys (empty: takes them away) and sends them to the
    /// channel's origin and standby, if it has them now. Duplicates count once.
    /// `Ok`: how many keys are now in force for the channel.
    pub fn set_publish_keys(
        &mut self,
        name: &str,
        mut digests: Vec<KeyDigest>,
    ) -> Result<usize, PublishKeysError> {
        if !tiercast_proto::ids::valid_channel_name(name) {
            let shown: String = name.chars().take(64).collect();
            return Err(PublishKeysError::BadChannel(shown));
        }
        digests.sort_unstable();
        digests.dedup();
        if digests.len() > MAX_PUBLISH_KEYS {
            return Err(PublishKeysError::TooMany(digests.len()));
        }
        let limit = self.cfg.max_channels;
        if !digests.is_empty()
            && !self.publish_keys.by_name.contains_key(name)
            && self.publish_keys.by_name.len() >= limit
        {
            return Err(PublishKeysError::TooManyChannels(limit));
        }
        let count = digests.len();
        match count {
            0 => self.publish_keys.by_name.remove(name),
            _ => self
                .publish_keys
                .by_name
                .insert(name.to_string(), digests.clone()),
        };
        self.events.push_back(CoordEvent::PublishKeysSet {
            channel_name: name.to_string(),
            keys: count,
        });
        if let Some(id) = self.channel_named(name) {
            let origin = self.channels.get(&id).map(|m| m.origin);
            let standby = self.backups.standby(id);
            for to in origin.into_iter().chain(standby) {
                self.send(
                    to,
                    Message::PublishKeys {
                        channel_name: name.to_string(),
                        digests: digests.clone(),
                    },
                );
            }
        }
        Ok(count)
    }

    /// Tells `to` (an origin announcing `name`, or its standby) the channel's
    /// keys, when the coordinator keeps any.
    pub(crate) fn send_publish_keys(&mut self, to: NodeId, name: &str) {
        let digests = self.publish_keys.get(name);
        if digests.is_empty() {
            return;
        }
        let msg = Message::PublishKeys {
            channel_name: name.to_string(),
            digests: digests.to_vec(),
        };
        self.send(to, msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CoordinatorConfig;
    use crate::content_directory::ingest_health::tests::register;
    use tiercast_proto::{NodeRole, Timestamp};

    fn t(ms: u64) -> Timestamp {
        Timestamp(ms * 1000)
    }

    fn origin(c: &mut Coordinator, id: u32) {
        register(c, t(0), id, NodeRole::Origin, 0);
    }

    fn announce(c: &mut Coordinator, id: u32, backup: bool) {
        c.handle_message(
            t(1),
            NodeId(id),
            Message::Announce {
                channel_name: "live".into(),
                public_key: [1; 32],
                channel: None,
                backup,
            },
        );
    }

    /// (to, kind, digests when publish keys) of every transmit, in order.
    fn sent(c: &mut Coordinator) -> Vec<(u32, &'static str, Option<Vec<KeyDigest>>)> {
        std::iter::from_fn(|| c.poll_transmit())
            .map(|tx| {
                let keys = match &tx.msg {
                    Message::PublishKeys { digests, .. } => Some(digests.clone()),
                    _ => None,
                };
                (tx.to.0, tx.msg.kind(), keys)
            })
            .collect()
    }

    #[test]
    fn keys_set_before_the_announce_reach_the_origin_before_announced() {
        let mut c = Coordinator::new(CoordinatorConfig::default(), t(0));
        assert_eq!(
            c.set_publish_keys("live", vec![[2; 32], [1; 32], [2; 32]]),
            Ok(2)
        );
        assert_eq!(c.publish_keys().get("live"), &[[1; 32], [2; 32]]);
        origin(&mut c, 1);
        sent(&mut c);
        announce(&mut c, 1, false);
        let out = sent(&mut c);
        let keys = out
            .iter()
            .position(|s| s.1 == "publish_keys")
            .expect("keys sent");
        let announced = out
            .iter()
            .position(|s| s.1 == "announced")
            .expect("announced");
        assert!(keys < announced, "{out:?}");
        assert_eq!(out[keys], (1, "publish_keys", Some(vec![[1; 32], [2; 32]])));
    }

    #[test]
    fn a_rotation_reaches_origin_and_standby_and_an_empty_set_takes_keys_away() {
        let mut c = Coordinator::new(CoordinatorConfig::default(), t(0));
        origin(&mut c, 1);
        origin(&mut c, 2);
        announce(&mut c, 1, false);
        announce(&mut c, 2, true);
        let out = sent(&mut c);
        assert!(
            out.iter().all(|s| s.1 != "publish_keys"),
            "no keys kept, none sent: {out:?}"
        );
        assert_eq!(c.set_publish_keys("live", vec![[7; 32]]), Ok(1));
        let mut out = sent(&mut c);
        out.sort();
        assert_eq!(
            out,
            vec![
                (1, "publish_keys", Some(vec![[7; 32]])),
                (2, "publish_keys", Some(vec![[7; 32]]))
            ]
        );
        let events: Vec<CoordEvent> = std::iter::from_fn(|| c.poll_event()).collect();
        assert!(events.iter().any(|e| matches!(e,
            CoordEvent::PublishKeysSet { channel_name, keys: 1 } if channel_name == "live")));
        assert_eq!(c.set_publish_keys("live", Vec::new()), Ok(0));
        assert!(c.publish_keys().is_empty());
        let mut out = sent(&mut c);
        out.sort();
        assert_eq!(
            out,
            vec![
                (1, "publish_keys", Some(Vec::new())),
                (2, "publish_keys", Some(Vec::new()))
            ]
        );
    }

    #[test]
    fn bad_names_too_many_keys_and_too_many_channels_are_refused() {
        let cfg = CoordinatorConfig {
            max_channels: 2,
            ..CoordinatorConfig::default()
        };
        let mut c = Coordinator::new(cfg, t(0));
        assert!(matches!(
            c.set_publish_keys("a/b", vec![[1; 32]]),
            Err(PublishKeysError::BadChannel(_))
        ));
        let many: Vec<KeyDigest> = (0..=MAX_PUBLISH_KEYS).map(|i| [i as u8; 32]).collect();
        assert_eq!(
            c.set_publish_keys("a", many),
            Err(PublishKeysError::TooMany(MAX_PUBLISH_KEYS + 1))
        );
        assert_eq!(c.set_publish_keys("a", vec![[1; 32]]), Ok(1));
        assert_eq!(c.set_publish_keys("b", vec![[1; 32]]), Ok(1));
        assert_eq!(
            c.set_publish_keys("c", vec![[1; 32]]),
            Err(PublishKeysError::TooManyChannels(2))
        );
        // A channel that has keys may change them; clearing one frees a place.
        assert_eq!(c.set_publish_keys("b", vec![[2; 32]]), Ok(1));
        assert_eq!(c.set_publish_keys("a", Vec::new()), Ok(0));
        assert_eq!(c.set_publish_keys("c", vec![[1; 32]]), Ok(1));
        assert_eq!(c.publish_keys().len(), 2);
    }
}
