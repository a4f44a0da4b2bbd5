//! Election of a manager id's holder among coordinator processes on etcd
//! (X7, D7). Each logical manager id has one key, `<prefix>/manager/<id>`
//! ([`super::directory`]), held by one process under a lease; its value is the
//! holder's public address, and its create revision is the holder's epoch —
//! the fencing token every order carries (etcd's revisions only grow, so each
//! new holder's epoch is above every earlier one's).
//!
//! A process stands for one id (`--manager-id N`) or is a spare
//! (`--manager-id spare`) that takes over whichever known id has lost its
//! holder — the seed's resilience service layer mapping a spare DCM to a failed
//! one's logical identifier. The task, in a loop:
//! - **standby**: reads the whole map (one range request) every `poll` and
//!   publishes it; its id held by someone → `Standby { leader }`; a spare with
//!   no orphaned id → `Standby { leader: None }`; otherwise campaign;
//! - **campaign**: grant a lease of `ttl`, then one transaction "create the key
//!   if it does not exist, with our address and lease, and mark the id known";
//!   won → `Leader { epoch, manager }`; lost (another process was quicker) →
//!   revoke the lease, standby again;
//! - **lead**: a keep-alive every quarter of the TTL (every `poll` while one
//!   fails); each answered one renews the [`LeaseClock`] from its send time;
//!   the map is read again and the channels this process serves are written
//!   to it (`<prefix>/channel/<name>` → the id). A lease etcd says is gone, or
//!   a clock run out with no answer (etcd unreachable), ends the leadership:
//!   `Standby { leader: None }` is published, and the driver stops issuing
//!   orders.
//!
//! `resign` (a clean shutdown) revokes the lease, so another process takes
//! over at its next poll instead of after the TTL.

use super::client::{b64, num, text_of, EtcdClient, EtcdError};
use super::directory::{self, Directory};
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
    /// How often a standby looks at the map.
    pub poll: Duration,
    /// The manager id this process stands for, or a spare.
    pub manager: ManagerChoice,
}

/// What a process stands for (D7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManagerChoice {
    /// This id only: it leads it whenever no one else holds it.
    Id(u16),
    /// Any known id that has no holder (the lowest first), one at a time.
    Spare,
}

impl std::str::FromStr for ManagerChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "spare" => Ok(ManagerChoice::Spare),
            n => n
                .parse()
                .map(ManagerChoice::Id)
                .map_err(|_| format!("manager id '{s}' is neither 0..=65535 nor 'spare'")),
        }
    }
}

impl std::fmt::Display for ManagerChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManagerChoice::Id(id) => write!(f, "manager {id}"),
            ManagerChoice::Spare => write!(f, "a spare (any manager without a holder)"),
        }
    }
}

impl ElectionConfig {
    /// The key of the id this process stands for (`None` for a spare).
    pub fn manager_key(&self) -> Option<String> {
        match self.manager {
            ManagerChoice::Id(id) => Some(directory::manager_key(&self.prefix, id)),
            ManagerChoice::Spare => None,
        }
    }
}

/// What this process is, as the election says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leadership {
    /// Holds no id: `leader` is who holds the id it stands for (its
    /// address), when known (`None` for a spare).
    Standby { leader: Option<String> },
    /// The holder of manager id `manager`, with `epoch`, for as long as
    /// `lease` holds.
    Leader {
        epoch: u64,
        lease: LeaseClock,
        manager: u16,
    },
}

impl Leadership {
    /// The epoch this process may issue orders under at `now`.
    pub fn epoch_at(&self, now: Instant) -> Option<u64> {
        match self {
            Leadership::Leader { epoch, lease, .. } if lease.holds(now) => Some(*epoch),
            _ => None,
        }
    }
}

/// The running election; dropping it stops taking part (the lease then runs out).
pub struct Election {
    pub leadership: watch::Receiver<Leadership>,
    /// The map as last read from etcd.
    pub directory: watch::Receiver<Directory>,
    /// The channels this process serves while it leads (written to the map).
    pub served: watch::Sender<Vec<String>>,
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
        let (dir_tx, dir_rx) = watch::channel(Directory::default());
        let (served_tx, served_rx) = watch::channel(Vec::new());
        let (resign_tx, resign_rx) = tokio::sync::oneshot::channel();
        let chans = Chans {
            leadership: tx,
            directory: dir_tx,
            served: served_rx,
            member: Membership::default(),
        };
        let task = tokio::spawn(run(cfg, client, chans, resign_rx));
        Ok(Election {
            leadership: rx,
            directory: dir_rx,
            served: served_tx,
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

/// What the task publishes and reads, and its membership.
struct Chans {
    leadership: watch::Sender<Leadership>,
    directory: watch::Sender<Directory>,
    served: watch::Receiver<Vec<String>>,
    member: Membership,
}

/// This process's `<prefix>/member/<address>` key, under a lease of its own
/// kept alive at the pace of the holder's (every quarter of the TTL): the
/// list of live coordinator processes nodes are told (`Coordinators`).
#[derive(Default)]
struct Membership {
    lease: Option<u64>,
    renewed: Option<Instant>,
}

impl Membership {
    async fn keep(&mut self, client: &mut EtcdClient, cfg: &ElectionConfig) {
        let every = Duration::from_millis((cfg.ttl_s * 1000 / 4).max(100));
        if self.renewed.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        if let Some(id) = self.lease {
            let alive = client
                .call("lease/keepalive", &json!({ "ID": id.to_string() }))
                .await
                .is_ok_and(|a| num(&a["result"]["TTL"]) > 0);
            if alive {
                self.renewed = Some(Instant::now());
                return;
            }
            self.lease = None;
        }
        let Ok(grant) = client
            .call("lease/grant", &json!({ "TTL": cfg.ttl_s }))
            .await
        else {
            return;
        };
        let id = num(&grant["ID"]);
        let put = json!({
            "key": b64(directory::member_key(&cfg.prefix, &cfg.advertise).as_bytes()),
            "value": b64(cfg.advertise.as_bytes()),
            "lease": id.to_string(),
        });
        if id != 0 && client.call("kv/put", &put).await.is_ok() {
            self.lease = Some(id);
            self.renewed = Some(Instant::now());
        }
    }

    async fn revoke(&mut self, client: &mut EtcdClient) {
        if let Some(id) = self.lease.take() {
            let _ = client
                .call("lease/revoke", &json!({ "ID": id.to_string() }))
                .await;
        }
    }
}

async fn run(
    cfg: ElectionConfig,
    mut client: EtcdClient,
    mut chans: Chans,
    mut resign: tokio::sync::oneshot::Receiver<()>,
) {
    let tx = chans.leadership.clone();
    let mut trouble = Trouble::default();
    let mut lease_id: Option<u64> = None;
    loop {
        let step = async {
            chans.member.keep(&mut client, &cfg).await;
            match read_map(&mut client, &cfg).await {
                Ok(dir) => {
                    trouble.cleared();
                    let target = match cfg.manager {
                        ManagerChoice::Id(id) => match dir.holders.get(&id) {
                            Some(holder) => Err(Some(holder.clone())),
                            None => Ok(id),
                        },
                        ManagerChoice::Spare => dir.orphan().ok_or(None),
                    };
                    publish(&chans.directory, dir);
                    match target {
                        Err(leader) => {
                            publish(&tx, Leadership::Standby { leader });
                            tokio::time::sleep(cfg.poll).await;
                        }
                        Ok(id) => {
                            if let Some((lid, epoch, lease)) =
                                campaign(&mut client, &cfg, id, &tx).await
                            {
                                lease_id = Some(lid);
                                info!(
                                    epoch,
                                    manager = id,
                                    "elected: this coordinator holds the manager"
                                );
                                publish(
                                    &tx,
                                    Leadership::Leader {
                                        epoch,
                                        lease,
                                        manager: id,
                                    },
                                );
                                lead(&mut client, &cfg, (lid, id), epoch, lease, &mut chans).await;
                                lease_id = None;
                                publish(&tx, Leadership::Standby { leader: None });
                            }
                        }
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
                chans.member.revoke(&mut client).await;
                return;
            }
        }
    }
}

/// The whole map, in one range request.
async fn read_map(client: &mut EtcdClient, cfg: &ElectionConfig) -> Result<Directory, EtcdError> {
    let answer = client
        .call(
            "kv/range",
            &json!({
                "key": b64(directory::root(&cfg.prefix).as_bytes()),
                "range_end": b64(directory::range_end(&cfg.prefix).as_bytes()),
            }),
        )
        .await?;
    Ok(Directory::from_range(&cfg.prefix, &answer))
}

/// One try at the key: (lease id, epoch, lease) when won.
async fn campaign(
    client: &mut EtcdClient,
    cfg: &ElectionConfig,
    manager: u16,
    tx: &watch::Sender<Leadership>,
) -> Option<(u64, u64, LeaseClock)> {
    let key = directory::manager_key(&cfg.prefix, manager);
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
        "success": [
            { "request_put": { "key": k, "value": b64(cfg.advertise.as_bytes()), "lease": id.to_string() } },
            { "request_put": { "key": b64(directory::id_key(&cfg.prefix, manager).as_bytes()), "value": "" } },
        ],
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
        let holder = answer
            .as_ref()
            .and_then(|a| text_of(&a["responses"][0]["response_range"]["kvs"][0]["value"]));
        // A spare that lost the race stands for no id in particular.
        let leader = holder.filter(|_| cfg.manager != ManagerChoice::Spare);
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

/// Keeps the lease alive while it lasts; reads the map and writes the
/// channels served at the same pace.
async fn lead(
    client: &mut EtcdClient,
    cfg: &ElectionConfig,
    (id, manager): (u64, u16),
    epoch: u64,
    mut lease: LeaseClock,
    chans: &mut Chans,
) {
    let tx = chans.leadership.clone();
    let every = Duration::from_millis((cfg.ttl_s * 1000 / 4).max(100));
    let mut wait = every;
    // The channels served at the last keep-alive: one gone since has ended.
    let mut before: Vec<String> = Vec::new();
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
                publish(
                    &tx,
                    Leadership::Leader {
                        epoch,
                        lease,
                        manager,
                    },
                );
                wait = every;
                chans.member.keep(client, cfg).await;
                if let Ok(dir) = read_map(client, cfg).await {
                    let served = chans.served.borrow().clone();
                    for name in served
                        .iter()
                        .filter(|n| dir.channels.get(*n) != Some(&manager))
                    {
                        write_channel(client, cfg, name, manager).await;
                    }
                    let gone = ended(&before, &served, &dir, manager);
                    before = served;
                    for name in gone {
                        if !clear_channel(client, cfg, &name).await {
                            // Tried again at the next keep-alive.
                            before.push(name);
                        }
                    }
                    publish(&chans.directory, dir);
                }
            }
            Err(e) => {
                warn!(epoch, error = %e, "lease keep-alive failed");
                wait = cfg.poll.min(every);
            }
        }
    }
}

/// `<prefix>/channel/<name>` → `manager`: where viewers of the channel go.
async fn write_channel(client: &mut EtcdClient, cfg: &ElectionConfig, name: &str, manager: u16) {
    let put = json!({
        "key": b64(directory::channel_key(&cfg.prefix, name).as_bytes()),
        "value": b64(manager.to_string().as_bytes()),
    });
    match client.call("kv/put", &put).await {
        Ok(_) => info!(channel = name, manager, "channel mapped to this manager"),
        Err(e) => warn!(channel = name, error = %e, "channel not mapped (tried again)"),
    }
}

/// Channels this process served at the last keep-alive, serves no more, and
/// the map still gives to `manager`: ended here, so their `channel/` keys go.
/// Only what this process itself served and saw end — a holder just taken over
/// has served nothing yet and clears nothing while its machine is rebuilt, and
/// a channel mapped to another id since is that id's.
fn ended(before: &[String], served: &[String], dir: &Directory, manager: u16) -> Vec<String> {
    before
        .iter()
        .filter(|n| !served.contains(n) && dir.channels.get(*n) == Some(&manager))
        .cloned()
        .collect()
}

/// Deletes `<prefix>/channel/<name>`; `false` when etcd did not answer.
async fn clear_channel(client: &mut EtcdClient, cfg: &ElectionConfig, name: &str) -> bool {
    let del = json!({ "key": b64(directory::channel_key(&cfg.prefix, name).as_bytes()) });
    match client.call("kv/deleterange", &del).await {
        Ok(_) => {
            info!(channel = name, "channel ended: its map entry cleared");
            true
        }
        Err(e) => {
            warn!(channel = name, error = %e, "channel ended, map entry not cleared (tried again)");
            false
        }
    }
}

fn publish<T: PartialEq>(tx: &watch::Sender<T>, l: T) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_a_channel_this_process_served_and_saw_end_is_cleared() {
        let mut dir = Directory::default();
        dir.channels.insert("live".into(), 1);
        dir.channels.insert("news".into(), 1);
        dir.channels.insert("moved".into(), 2);
        // `news` ended here; `moved` ended here but is another id's now.
        let before = names(&["live", "news", "moved"]);
        assert_eq!(ended(&before, &names(&["live"]), &dir, 1), names(&["news"]));
        // A holder just taken over served nothing before: nothing is cleared
        // while its machine is rebuilt from the nodes.
        assert!(ended(&[], &[], &dir, 1).is_empty());
        // Still served: kept.
        assert!(ended(&before, &before, &dir, 1).is_empty());
    }
}
