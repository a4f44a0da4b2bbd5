//! Leader election among coordinator processes on etcd (X7, D7): one key,
//! `<prefix>/leader`, held by the leader under a lease; its value is the
//! leader's public address, and its create revision is the leader's epoch —
//! the fencing token every order carries (etcd's revisions only grow, so each
//! new leader's epoch is above every earlier one's).
//!
//! The task, in a loop:
//! - **standby**: reads the key every `poll`; someone holds it → publish
//!   `Standby { leader }`; no one → campaign;
//! - **campaign**: grant a lease of `ttl`, then one transaction "create the key
//!   if it does not exist, with our address and lease"; won → `Leader { epoch }`;
//!   lost (another standby was quicker) → revoke the lease, standby again;
//! - **lead**: a keep-alive every quarter of the TTL (every `poll` while one
//!   fails); each answered one renews the [`LeaseClock`] from its send time. A
//!   lease etcd says is gone, or a clock run out with no answer (etcd
//!   unreachable), ends the leadership: `Standby { leader: None }` is
//!   published, and the driver stops issuing orders.
//!
//! `resign` (a clean shutdown) revokes the lease, so a standby takes over at
//! its next poll instead of after the TTL.

use super::client::{b64, num, text_of, EtcdClient, EtcdError};
use super::lease::LeaseClock;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// How a coordinator process takes part in the election.
#[derive(Clone, Debug)]
pub struct ElectionConfig {
    /// etcd members, `http://host:port`.
    pub endpoints: Vec<String>,
    /// Keys live under this prefix (one cluster of coordinators per prefix).
    pub prefix: String,
    /// The address nodes and viewers reach this process at (`host:port`).
    pub advertise: String,
    /// The lease's time to live, in seconds (etcd may raise it to its minimum).
    pub ttl_s: u64,
    /// How often a standby looks at the leader key.
    pub poll: Duration,
}

impl ElectionConfig {
    pub fn leader_key(&self) -> String {
        format!("{}/leader", self.prefix.trim_end_matches('/'))
    }
}

/// What this process is, as the election says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leadership {
    /// Not the leader: `leader` is who is (its address), when known.
    Standby { leader: Option<String> },
    /// The leader, with `epoch`, for as long as `lease` holds.
    Leader { epoch: u64, lease: LeaseClock },
}

impl Leadership {
    /// The epoch this process may issue orders under at `now`.
    pub fn epoch_at(&self, now: Instant) -> Option<u64> {
        match self {
            Leadership::Leader { epoch, lease } if lease.holds(now) => Some(*epoch),
            _ => None,
        }
    }
}

/// The running election; dropping it stops taking part (the lease then runs out).
pub struct Election {
    pub leadership: watch::Receiver<Leadership>,
    task: JoinHandle<()>,
    resign: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Election {
    /// Starts taking part; fails only on a bad configuration.
    pub fn spawn(cfg: ElectionConfig) -> Result<Election, String> {
        if cfg.ttl_s == 0 {
            return Err("the lease TTL must be at least 1 s".into());
        }
        let timeout = Duration::from_millis((cfg.ttl_s * 1000 / 4).clamp(100, 1000));
        let client = EtcdClient::new(&cfg.endpoints, timeout)?;
        let (tx, rx) = watch::channel(Leadership::Standby { leader: None });
        let (resign_tx, resign_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(run(cfg, client, tx, resign_rx));
        Ok(Election {
            leadership: rx,
            task,
            resign: Some(resign_tx),
        })
    }

    /// Gives the leadership up at once (the lease revoked), and stops.
    pub async fn resign(mut self) {
        if let Some(r) = self.resign.take() {
            let _ = r.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.task).await;
        self.task.abort();
    }
}

impl Drop for Election {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    cfg: ElectionConfig,
    mut client: EtcdClient,
    tx: watch::Sender<Leadership>,
    mut resign: tokio::sync::oneshot::Receiver<()>,
) {
    let key = cfg.leader_key();
    let mut trouble = Trouble::default();
    let mut lease_id: Option<u64> = None;
    loop {
        let step = async {
            match leader_of(&mut client, &key).await {
                Ok(Some(leader)) => {
                    trouble.cleared();
                    publish(
                        &tx,
                        Leadership::Standby {
                            leader: Some(leader),
                        },
                    );
                    tokio::time::sleep(cfg.poll).await;
                }
                Ok(None) => {
                    trouble.cleared();
                    if let Some((id, epoch, lease)) = campaign(&mut client, &cfg, &key, &tx).await {
                        lease_id = Some(id);
                        info!(epoch, key, "elected: this coordinator leads");
                        publish(&tx, Leadership::Leader { epoch, lease });
                        lead(&mut client, &cfg, id, epoch, lease, &tx).await;
                        lease_id = None;
                        publish(&tx, Leadership::Standby { leader: None });
                    }
                }
                Err(e) => {
                    trouble.saw(&e);
                    publish(&tx, Leadership::Standby { leader: None });
                    tokio::time::sleep(cfg.poll).await;
                }
            }
        };
        tokio::select! {
            _ = step => {}
            _ = &mut resign => {
                publish(&tx, Leadership::Standby { leader: None });
                if let Some(id) = lease_id {
                    let _ = client.call("lease/revoke", &json!({ "ID": id.to_string() })).await;
                    info!("resigned: lease revoked");
                }
                return;
            }
        }
    }
}

/// Who holds the leader key (its value), if anyone.
async fn leader_of(client: &mut EtcdClient, key: &str) -> Result<Option<String>, EtcdError> {
    let answer = client
        .call("kv/range", &json!({ "key": b64(key.as_bytes()) }))
        .await?;
    Ok(answer["kvs"].get(0).and_then(|kv| text_of(&kv["value"])))
}

/// One try at the key: (lease id, epoch, lease) when won.
async fn campaign(
    client: &mut EtcdClient,
    cfg: &ElectionConfig,
    key: &str,
    tx: &watch::Sender<Leadership>,
) -> Option<(u64, u64, LeaseClock)> {
    let sent = Instant::now();
    let grant = client
        .call("lease/grant", &json!({ "TTL": cfg.ttl_s }))
        .await
        .ok()?;
    let (id, ttl) = (num(&grant["ID"]), num(&grant["TTL"]));
    if id == 0 || ttl == 0 {
        return None;
    }
    let k = b64(key.as_bytes());
    let txn = json!({
        "compare": [{ "key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0" }],
        "success": [{ "request_put": { "key": k, "value": b64(cfg.advertise.as_bytes()), "lease": id.to_string() } }],
        "failure": [{ "request_range": { "key": k } }],
    });
    let answer = client.call("kv/txn", &txn).await.ok();
    let won = answer
        .as_ref()
        .is_some_and(|a| a["succeeded"] == Value::Bool(true));
    if !won {
        let _ = client
            .call("lease/revoke", &json!({ "ID": id.to_string() }))
            .await;
        let leader = answer
            .as_ref()
            .and_then(|a| text_of(&a["responses"][0]["response_range"]["kvs"][0]["value"]));
        publish(tx, Leadership::Standby { leader });
        return None;
    }
    let epoch = num(&answer?["header"]["revision"]);
    Some((
        id,
        epoch,
        LeaseClock::granted(sent, Duration::from_secs(ttl)),
    ))
}

/// Keeps the lease alive while it lasts.
async fn lead(
    client: &mut EtcdClient,
    cfg: &ElectionConfig,
    id: u64,
    epoch: u64,
    mut lease: LeaseClock,
    tx: &watch::Sender<Leadership>,
) {
    let every = Duration::from_millis((cfg.ttl_s * 1000 / 4).max(100));
    let mut wait = every;
    loop {
        tokio::time::sleep(wait).await;
        let sent = Instant::now();
        if !lease.holds(sent) {
            warn!(
                epoch,
                "lease ran out with no keep-alive answered: no more orders from this coordinator"
            );
            return;
        }
        match client
            .call("lease/keepalive", &json!({ "ID": id.to_string() }))
            .await
        {
            Ok(answer) => {
                let ttl = num(&answer["result"]["TTL"]);
                if ttl == 0 {
                    warn!(
                        epoch,
                        "etcd says our lease is gone: no more orders from this coordinator"
                    );
                    return;
                }
                lease.renewed(sent, Duration::from_secs(ttl));
                publish(tx, Leadership::Leader { epoch, lease });
                wait = every;
            }
            Err(e) => {
                warn!(epoch, error = %e, "lease keep-alive failed");
                wait = cfg.poll.min(every);
            }
        }
    }
}

fn publish(tx: &watch::Sender<Leadership>, l: Leadership) {
    tx.send_if_modified(|cur| {
        if *cur == l {
            false
        } else {
            *cur = l;
            true
        }
    });
}

/// etcd unreachable is said once, and again when it answers.
#[derive(Default)]
struct Trouble(bool);

impl Trouble {
    fn saw(&mut self, e: &EtcdError) {
        if !std::mem::replace(&mut self.0, true) {
            warn!(error = %e, "etcd unreachable: this coordinator cannot lead until it answers");
        }
    }

    fn cleared(&mut self) {
        if std::mem::take(&mut self.0) {
            info!("etcd answers again");
        }
    }
}
