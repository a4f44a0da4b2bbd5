//! `GET /leader[?manager=ID]` on the coordinator API (D7, X7): who holds the
//! manager id, as this process's view of the election says —
//! `{"leader": "host:port"}`, itself when it holds that id under a lease that
//! holds, `null` when no one is known (an election under way, etcd out of
//! reach, or no election at all). Without `manager`, the id this process
//! stands for; with it, the holder etcd's map names for that id. Answered by the API
//! task from the election's watch channel, without a round trip to the
//! coordinator's driver: nodes whose link went silent ask it of every other
//! coordinator address many times a second during a failover, so it must
//! cost no more than a `/health`.

use crate::etcd::{Directory, Leadership};
use serde_json::json;
use std::time::Instant;
use tokio::sync::watch;

/// This process's view of who leads.
#[derive(Clone, Debug)]
pub struct LeaderView {
    leadership: watch::Receiver<Leadership>,
    /// The manager ids' map, as the election last read it.
    directory: watch::Receiver<Directory>,
    /// The address nodes reach this process at (`host:port`).
    advertise: String,
}

impl LeaderView {
    pub fn new(
        leadership: watch::Receiver<Leadership>,
        directory: watch::Receiver<Directory>,
        advertise: String,
    ) -> Self {
        LeaderView {
            leadership,
            directory,
            advertise,
        }
    }

    /// The address of the holder of `manager` (`None`: the id this process
    /// stands for) at `now`, if one is known.
    pub fn leader(&self, now: Instant, manager: Option<u16>) -> Option<String> {
        match (&*self.leadership.borrow(), manager) {
            (
                Leadership::Leader {
                    lease,
                    manager: held,
                    ..
                },
                m,
            ) if m.is_none_or(|m| m == *held) => lease.holds(now).then(|| self.advertise.clone()),
            (Leadership::Standby { leader }, None) => leader.clone(),
            (_, Some(m)) => self
                .directory
                .borrow()
                .holders
                .get(&m)
                .filter(|a| **a != self.advertise)
                .cloned(),
            (Leadership::Leader { .. }, None) => None,
        }
    }
}

/// The answer's body (`view`: `None` without an election).
pub(crate) fn leader_json(
    view: Option<&LeaderView>,
    manager: Option<u16>,
    now: Instant,
) -> serde_json::Value {
    json!({ "leader": view.and_then(|v| v.leader(now, manager)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::lease::LeaseClock;
    use std::time::Duration;

    #[test]
    fn the_leader_is_itself_while_its_lease_holds_else_who_the_election_names() {
        let t0 = Instant::now();
        let (tx, rx) = watch::channel(Leadership::Standby { leader: None });
        let (_dir_tx, dir_rx) = watch::channel(Directory::default());
        let view = LeaderView::new(rx, dir_rx, "127.0.0.1:7001".into());
        assert_eq!(
            leader_json(Some(&view), None, t0),
            json!({ "leader": null })
        );
        tx.send_replace(Leadership::Standby {
            leader: Some("127.0.0.1:7000".into()),
        });
        assert_eq!(view.leader(t0, None).as_deref(), Some("127.0.0.1:7000"));
        tx.send_replace(Leadership::Leader {
            epoch: 9,
            lease: LeaseClock::granted(t0, Duration::from_secs(1)),
            manager: 0,
        });
        assert_eq!(view.leader(t0, None).as_deref(), Some("127.0.0.1:7001"));
        assert_eq!(view.leader(t0, Some(0)).as_deref(), Some("127.0.0.1:7001"));
        assert_eq!(
            view.leader(t0 + Duration::from_secs(1), None),
            None,
            "a lease run out names nobody"
        );
        assert_eq!(leader_json(None, None, t0), json!({ "leader": null }));
    }

    #[test]
    fn another_manager_ids_holder_is_the_one_the_map_names() {
        let t0 = Instant::now();
        let (_tx, rx) = watch::channel(Leadership::Leader {
            epoch: 9,
            lease: LeaseClock::granted(t0, Duration::from_secs(1)),
            manager: 0,
        });
        let (dir_tx, dir_rx) = watch::channel(Directory::default());
        let view = LeaderView::new(rx, dir_rx, "127.0.0.1:7001".into());
        assert_eq!(view.leader(t0, Some(1)), None, "no holder of 1 known");
        let mut d = Directory::default();
        d.holders.insert(0, "127.0.0.1:7001".into());
        d.holders.insert(1, "127.0.0.1:7002".into());
        dir_tx.send_replace(d);
        assert_eq!(view.leader(t0, Some(1)).as_deref(), Some("127.0.0.1:7002"));
        assert_eq!(view.leader(t0, Some(0)).as_deref(), Some("127.0.0.1:7001"));
        assert_eq!(
            leader_json(Some(&view), Some(1), t0),
            json!({ "leader": "127.0.0.1:7002" })
        );
    }
}
