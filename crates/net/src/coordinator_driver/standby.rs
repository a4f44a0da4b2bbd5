//! The coordinator process's part in an election (X7, D7): becoming the leader
//! (a fresh machine with the election's epoch, restored from the store; the
//! managers' state is rebuilt as the nodes register again and report their
//! links), stepping down when the lease ends (the machine dropped: no order
//! sent after), and what a standby answers — `ServedElsewhere` with the
//! leader's address to every node message, a redirect to the leader's
//! `/watch` to viewers, a refusal naming the leader to `POST /policy`.

use super::managers::watch_at;
use super::{restore, Driver};
use crate::etcd::Leadership;
use crate::http::{ApiRequest, WatchAnswer};
use serde_json::{json, Value};
use std::time::Instant;
use tiercast_coordinator::Coordinator;
use tiercast_proto::{Message, NodeId};
use tracing::{debug, info, warn};

impl Driver {
    /// The election's current view (`None` without an election).
    fn view(&self) -> Option<Leadership> {
        self.leadership.as_ref().map(|l| l.borrow().clone())
    }

    /// When this leader's lease ends, if it leads under an election.
    pub(super) fn lease_end(&self) -> Option<Instant> {
        match self.view()? {
            Leadership::Leader { lease, .. } if self.machine.is_some() => Some(lease.valid_until()),
            _ => None,
        }
    }

    /// Orders may go out now: no election, or a lease that holds.
    pub(super) fn may_order(&self) -> bool {
        match self.view() {
            None => true,
            Some(l) => {
                l.epoch_at(Instant::now()) == self.machine.as_ref().map(|m| m.config().epoch)
            }
        }
    }

    /// The leader this process knows of (itself when it leads).
    fn leader(&self) -> Option<String> {
        match self.view()? {
            Leadership::Standby { leader } => leader,
            Leadership::Leader { .. } => Some(self.config_advertise()),
        }
    }

    pub(super) fn config_advertise(&self) -> String {
        self.advertise.clone()
    }

    /// The election said something: lead, or stop leading.
    pub(super) fn on_leadership(&mut self) {
        let Some(view) = self.view() else { return };
        let now = Instant::now();
        match (
            view.epoch_at(now),
            self.machine.as_ref().map(|m| m.config().epoch),
        ) {
            (Some(epoch), None) => self.lead(epoch),
            (Some(epoch), Some(mine)) if epoch != mine => {
                self.step_down("elected again under another epoch");
                self.lead(epoch);
            }
            (None, Some(_)) => self.step_down("the lease ended"),
            _ => {}
        }
    }

    fn lead(&mut self, epoch: u64) {
        let mut config = self.config.clone();
        config.epoch = epoch;
        let now = self.clock.now();
        let mut machine = Coordinator::new(config, now);
        if let Some(store) = &self.store {
            restore(&mut machine, store, now);
        }
        self.machine = Some(machine);
        info!(epoch, manager = ?self.held_manager(), "holding the manager: its nodes register again and report their links");
    }

    /// Drops the machine: nothing it decided is sent from now on.
    pub(super) fn step_down(&mut self, why: &str) {
        let Some(mut machine) = self.machine.take() else {
            return;
        };
        let mut dropped = 0;
        while machine.poll_transmit().is_some() {
            dropped += 1;
        }
        self.orders_dropped += dropped;
        warn!(
            epoch = machine.config().epoch,
            orders_dropped = dropped,
            why,
            "no longer leading: no more orders from this coordinator"
        );
    }

    /// A node spoke to a process that does not serve it: tell it where its
    /// manager's holder is — the id it named (`Register`, `Heartbeat`), else
    /// the one this process stands for.
    pub(super) fn served_elsewhere(&mut self, from: NodeId, manager: Option<u16>) {
        let leader = match manager {
            Some(m) => self.holder_of(m),
            None => self.leader().filter(|l| *l != self.advertise),
        };
        debug!(node = %from, ?leader, "served elsewhere");
        self.served_elsewhere += 1;
        if let Err(e) = self.links.send(from, Message::ServedElsewhere { leader }) {
            self.send_errors += 1;
            debug!(to = %from, error = %e, "send failed");
        }
    }

    pub(super) fn standby_api(&mut self, req: ApiRequest) {
        let leader = self.leader().filter(|l| *l != self.advertise);
        match req {
            ApiRequest::Watch {
                channel,
                region,
                feed,
                reply,
                ..
            } => {
                // The channel's own manager first (the map), else the
                // holder of the id this process stands for.
                let answer = match self.channel_elsewhere(&channel).or(leader) {
                    Some(l) => watch_at(&l, &channel, region.as_deref(), &feed),
                    None => WatchAnswer::Unavailable {
                        retry_after_s: 1,
                        reason: "no coordinator leads right now (an election is under way): retry"
                            .into(),
                    },
                };
                let _ = reply.send(answer);
            }
            ApiRequest::Status { reply } => {
                let _ = reply.send(self.standby_status());
            }
            ApiRequest::SetPublishKeys { reply, .. } => {
                let why = match leader {
                    Some(l) => format!("this coordinator is a standby: set the publish keys at the leader, http://{l}"),
                    None => "no coordinator leads right now (an election is under way): retry".into(),
                };
                let _ = reply.send(Err(why));
            }
            ApiRequest::Metrics { reply } => {
                let _ = reply.send(self.metrics());
            }
            ApiRequest::ApplyPolicy { reply, .. } => {
                let why = match leader {
                    Some(l) => format!("this coordinator is a standby: apply the policies at the leader, http://{l}"),
                    None => "no coordinator leads right now (an election is under way): retry".into(),
                };
                let _ = reply.send(Err(why));
            }
        }
    }

    pub(super) fn standby_status(&self) -> Value {
        json!({
            "role": "standby",
            "leader": self.leader(),
            "manager": Value::Null,
            "stands_for": self.stands_for(),
            "directory": self.directory_json(),
            "epoch": Value::Null,
            "stats": {
                "send_errors": self.send_errors,
                "orders_dropped": self.orders_dropped,
                "served_elsewhere": self.served_elsewhere,
            },
        })
    }
}
