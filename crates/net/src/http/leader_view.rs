//! `GET /leader` on the coordinator API (D7, X7): who leads, as this process's
//! view of the election says — `{"leader": "host:port"}`, itself when it
//! leads under a lease that holds, `null` when no one is known (an election
//! under way, etcd out of reach, or no election at all). Answered by the API
//! task from the election's watch channel, without a round trip to the
//! coordinator's driver: nodes whose link went silent ask it of every other
//! coordinator address many times a second during a failover, so it must
//! cost no more than a `/health`.

use crate::etcd::Leadership;
use serde_json::json;
use std::time::Instant;
use tokio::sync::watch;

/// This process's view of who leads.
#[derive(Clone, Debug)]
pub struct LeaderView {
    leadership: watch::Receiver<Leadership>,
    /// The address nodes reach this process at (`host:port`).
    advertise: String,
}

impl LeaderView {
    pub fn new(leadership: watch::Receiver<Leadership>, advertise: String) -> Self {
        LeaderView {
            leadership,
            advertise,
        }
    }

    /// The leader's address at `now`, if one is known.
    pub fn leader(&self, now: Instant) -> Option<String> {
        match &*self.leadership.borrow() {
            Leadership::Standby { leader } => leader.clone(),
            Leadership::Leader { lease, .. } if lease.holds(now) => Some(self.advertise.clone()),
            Leadership::Leader { .. } => None,
        }
    }
}

/// The answer's body (`view`: `None` without an election).
pub(crate) fn leader_json(view: Option<&LeaderView>, now: Instant) -> serde_json::Value {
    json!({ "leader": view.and_then(|v| v.leader(now)) })
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
        let view = LeaderView::new(rx, "127.0.0.1:7001".into());
        assert_eq!(leader_json(Some(&view), t0), json!({ "leader": null }));
        tx.send_replace(Leadership::Standby {
            leader: Some("127.0.0.1:7000".into()),
        });
        assert_eq!(view.leader(t0).as_deref(), Some("127.0.0.1:7000"));
        tx.send_replace(Leadership::Leader {
            epoch: 9,
            lease: LeaseClock::granted(t0, Duration::from_secs(1)),
        });
        assert_eq!(view.leader(t0).as_deref(), Some("127.0.0.1:7001"));
        assert_eq!(
            view.leader(t0 + Duration::from_secs(1)),
            None,
            "a lease run out names nobody"
        );
        assert_eq!(leader_json(None, t0), json!({ "leader": null }));
    }
}
