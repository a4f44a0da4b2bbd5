//! What a node says on its own stderr about its link to the coordinator (D7, X3):
//! a Register that got no answer ("coordinator 127.0.0.1:7000 unreachable, no
//! answer to 2 registrations, retrying in 2.1 s"), a coordinator that refused our
//! cluster key, and the coordinator answering again. The machine decides when to
//! retry ([`tiercast_node::register`]: a bounded backoff); this only reports it.

use std::net::SocketAddr;
use tracing::{info, warn};

#[derive(Debug)]
pub(crate) struct CoordinatorLink {
    addr: SocketAddr,
    /// Trouble was reported since the coordinator last answered.
    troubled: bool,
}

impl CoordinatorLink {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        CoordinatorLink {
            addr,
            troubled: false,
        }
    }

    /// The link to the coordinator went down, or a dial to it failed.
    pub(crate) fn down(&mut self, reason: &str, retry_in_ms: Option<u64>) {
        let retry = retry_in_ms.map_or("at once".to_string(), |ms| {
            format!("in {:.1} s", ms as f64 / 1000.0)
        });
        self.troubled = true;
        if reason.contains("cluster key") {
            warn!(
                "coordinator {} refused our cluster key ({reason}): check --cluster-key / TIERCAST_CLUSTER_KEY; retrying {retry}",
                self.addr
            );
        } else {
            info!(
                "link to coordinator {} down ({reason}); registering again",
                self.addr
            );
        }
    }

    /// A Register got no answer.
    pub(crate) fn unanswered(&mut self, attempts: u32, retry_in_ms: u64) {
        self.troubled = true;
        warn!(
            "coordinator {} unreachable: no answer to {attempts} registration(s), retrying in {:.1} s",
            self.addr,
            retry_in_ms as f64 / 1000.0
        );
    }

    /// The coordinator answered a registration.
    pub(crate) fn answered(&mut self) {
        if std::mem::take(&mut self.troubled) {
            info!("coordinator {} answers: registered", self.addr);
        }
    }
}
