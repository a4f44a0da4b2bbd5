//! The resilience layer's map (D7, X7), as etcd holds it under a cluster's
//! prefix, and read back in one range request:
//!
//! | key | value | lease |
//! |---|---|---|
//! | `<prefix>/manager/<id>` | the address of the process holding manager `id` | the holder's: gone when it dies |
//! | `<prefix>/ids/<id>` | `""` — the id has been held once, so a spare takes it over when no one holds it | none |
//! | `<prefix>/channel/<name>` | the manager id serving channel `name` | none |
//! | `<prefix>/member/<host:port>` | the address of a live coordinator process (holder, standby or spare) | the process's own: gone when it dies |
//!
//! A manager id is a cell of the control plane: its channels, the relays and
//! viewers that registered with it, and the `Coordinator` machine that shapes
//! them. One process holds one id at a time; a spare process holds none until
//! an id loses its holder.

use super::client::{text_of, EtcdError};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Who holds which manager id, which ids exist, and which id serves each channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    /// Manager id → the address (`host:port`) of the process holding it.
    pub holders: BTreeMap<u16, String>,
    /// Every id held at least once.
    pub ids: BTreeSet<u16>,
    /// Channel name → the manager id serving it.
    pub channels: BTreeMap<String, u16>,
    /// Every live coordinator process (`host:port`): what nodes are told.
    pub members: BTreeSet<String>,
}

impl Directory {
    /// The address serving `channel`, when its manager is held.
    pub fn channel_holder(&self, channel: &str) -> Option<&str> {
        let id = self.channels.get(channel)?;
        self.holders.get(id).map(String::as_str)
    }

    /// The lowest id that exists and has no holder: what a spare takes.
    pub fn orphan(&self) -> Option<u16> {
        self.ids
            .iter()
            .copied()
            .find(|id| !self.holders.contains_key(id))
    }

    /// Reads the kvs of a range answer over the prefix; keys of other shapes
    /// (another tool's, or a damaged id) are skipped.
    pub fn from_range(prefix: &str, answer: &Value) -> Directory {
        let root = root(prefix);
        let mut dir = Directory::default();
        let Some(kvs) = answer["kvs"].as_array() else {
            return dir;
        };
        for kv in kvs {
            let Some(key) = text_of(&kv["key"]) else {
                continue;
            };
            // etcd's JSON leaves an empty value out (proto3): `ids/` keys have none.
            let value = text_of(&kv["value"]).unwrap_or_default();
            let Some(rest) = key.strip_prefix(&root) else {
                continue;
            };
            if let Some(id) = rest.strip_prefix("manager/") {
                if let (Ok(id), false) = (id.parse(), value.is_empty()) {
                    dir.holders.insert(id, value);
                }
            } else if let Some(id) = rest.strip_prefix("ids/") {
                if let Ok(id) = id.parse() {
                    dir.ids.insert(id);
                }
            } else if let Some(addr) = rest.strip_prefix("member/") {
                if !addr.is_empty() {
                    dir.members.insert(addr.to_string());
                }
            } else if let Some(name) = rest.strip_prefix("channel/") {
                if let Ok(id) = value.parse() {
                    dir.channels.insert(name.to_string(), id);
                }
            }
        }
        // A held id exists, even before its `ids/` key is read.
        dir.ids.extend(dir.holders.keys().copied());
        dir
    }
}

/// `<prefix>/`, the range every key of the map is under.
pub fn root(prefix: &str) -> String {
    format!("{}/", prefix.trim_end_matches('/'))
}

/// The end of the range over [`root`]: the same bytes with the last one raised.
pub fn range_end(prefix: &str) -> String {
    format!("{}0", prefix.trim_end_matches('/'))
}

pub fn manager_key(prefix: &str, id: u16) -> String {
    format!("{}manager/{id}", root(prefix))
}

pub fn id_key(prefix: &str, id: u16) -> String {
    format!("{}ids/{id}", root(prefix))
}

pub fn member_key(prefix: &str, addr: &str) -> String {
    format!("{}member/{addr}", root(prefix))
}

pub fn channel_key(prefix: &str, name: &str) -> String {
    format!("{}channel/{name}", root(prefix))
}

/// A directory that could not be read.
pub type DirectoryResult = Result<Directory, EtcdError>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::client::b64;
    use serde_json::json;

    fn kv(k: &str, v: &str) -> Value {
        json!({ "key": b64(k.as_bytes()), "value": b64(v.as_bytes()) })
    }

    #[test]
    fn holders_ids_and_channels_are_read_and_strangers_skipped() {
        let answer = json!({ "kvs": [
            kv("/tc/manager/0", "10.0.0.1:7000"),
            kv("/tc/manager/x", "bad id"),
            json!({ "key": b64(b"/tc/ids/0") }),
            kv("/tc/ids/1", ""),
            kv("/tc/ids/2", ""),
            kv("/tc/manager/2", "10.0.0.3:7000"),
            kv("/tc/channel/live", "1"),
            kv("/tc/channel/news", "2"),
            kv("/tc/channel/odd", "not a number"),
            kv("/tcx/manager/1", "another prefix"),
            kv("/tc/leader", "an older layout"),
            kv("/tc/member/10.0.0.1:7000", "10.0.0.1:7000"),
            kv("/tc/member/10.0.0.9:7000", "10.0.0.9:7000"),
        ]});
        let d = Directory::from_range("/tc", &answer);
        assert_eq!(d.holders.len(), 2);
        assert_eq!(d.holders[&0], "10.0.0.1:7000");
        assert_eq!(d.ids.iter().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(d.orphan(), Some(1));
        assert_eq!(d.channel_holder("news"), Some("10.0.0.3:7000"));
        assert_eq!(d.channel_holder("live"), None, "manager 1 has no holder");
        assert_eq!(d.channel_holder("odd"), None);
        assert_eq!(d.channels.len(), 2);
        assert_eq!(d.members.len(), 2);
        assert!(d.members.contains("10.0.0.9:7000"));
    }

    #[test]
    fn an_empty_or_odd_answer_is_an_empty_directory() {
        assert_eq!(
            Directory::from_range("/tc", &json!({})),
            Directory::default()
        );
        assert_eq!(
            Directory::from_range("/tc", &json!({"kvs": "x"})),
            Directory::default()
        );
        assert_eq!(Directory::default().orphan(), None);
    }

    #[test]
    fn keys_live_under_one_range() {
        for p in ["/tc", "/tc/"] {
            assert_eq!(manager_key(p, 3), "/tc/manager/3");
            assert_eq!(id_key(p, 3), "/tc/ids/3");
            assert_eq!(channel_key(p, "a"), "/tc/channel/a");
            assert_eq!(member_key(p, "h:1"), "/tc/member/h:1");
            assert!(root(p).as_str() < range_end(p).as_str());
            assert!(manager_key(p, u16::MAX).as_str() < range_end(p).as_str());
        }
    }
}
