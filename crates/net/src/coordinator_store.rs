//! The coordinator's embedded store (issue 11 item 6; C1's policy and history
//! databases): one `redb` file, `coordinator.redb`, under the coordinator's data
//! directory. It holds what must survive a restart — the operators' policy file
//! in force (its text: re-checked when loaded), the history of nodes (one
//! record per node, opaque bytes the coordinator machine encodes) and the
//! coordinator's epoch (D7, X7: one more at every start, so a restarted process's
//! orders win over its predecessor's), and the channels' publish keys (X1, X3:
//! SHA-256 digests only, never a key). The driver loads and saves; the sans-IO
//! machine never sees the store.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, TableDefinition};

/// The store's file inside the data directory.
pub const STORE_FILE: &str = "coordinator.redb";

/// `"current"` → the policy file in force.
const POLICY: TableDefinition<&str, &str> = TableDefinition::new("policy");
const CURRENT: &str = "current";
/// Node id → its history record (`tiercast_coordinator::history` encoding).
const NODE_HISTORY: TableDefinition<u32, &[u8]> = TableDefinition::new("node_history");
/// `"epoch"` → the last epoch a coordinator started with on this store.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const EPOCH: &str = "epoch";
/// Channel name → its publish keys' SHA-256 digests, end to end.
const PUBLISH_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("publish_keys");

/// Why the store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {0}: {1}")]
    Dir(PathBuf, std::io::Error),
    #[error("cannot open {0} (is another coordinator using this --data-dir?): {1}")]
    Open(PathBuf, String),
    #[error("store: {0}")]
    Db(String),
}

fn store_err<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Db(e.to_string())
}

/// A channel's name and its publish keys' digests.
pub type ChannelKeys = (String, Vec<[u8; 32]>);

/// The open store.
pub struct CoordinatorStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for CoordinatorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorStore")
            .field("path", &self.path)
            .finish()
    }
}

impl CoordinatorStore {
    /// Opens (creating) `dir/coordinator.redb`; a file left by a crash is repaired.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Dir(dir.to_path_buf(), e))?;
        let path = dir.join(STORE_FILE);
        let db =
            Database::create(&path).map_err(|e| StoreError::Open(path.clone(), e.to_string()))?;
        let store = CoordinatorStore { db, path };
        // Both tables exist from the start, so a reader never meets a missing one.
        let tx = store.db.begin_write().map_err(store_err)?;
        tx.open_table(POLICY).map_err(store_err)?;
        tx.open_table(NODE_HISTORY).map_err(store_err)?;
        tx.open_table(META).map_err(store_err)?;
        tx.open_table(PUBLISH_KEYS).map_err(store_err)?;
        tx.commit().map_err(store_err)?;
        Ok(store)
    }

    /// The epoch of a coordinator starting on this store: one more than the last
    /// one's (1 on a new store), kept before it is returned.
    pub fn next_epoch(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_write().map_err(store_err)?;
        let epoch = {
            let mut table = tx.open_table(META).map_err(store_err)?;
            let last = table
                .get(EPOCH)
                .map_err(store_err)?
                .map_or(0, |v| v.value());
            let epoch = last.saturating_add(1);
            table.insert(EPOCH, epoch).map_err(store_err)?;
            epoch
        };
        tx.commit().map_err(store_err)?;
        Ok(epoch)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The policy file last installed, if any.
    pub fn policy_source(&self) -> Result<Option<String>, StoreError> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let table = tx.open_table(POLICY).map_err(store_err)?;
        Ok(table
            .get(CURRENT)
            .map_err(store_err)?
            .map(|v| v.value().to_string()))
    }

    /// Keeps `source` as the policy file in force (durable when this returns).
    pub fn save_policy(&self, source: &str) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = tx.open_table(POLICY).map_err(store_err)?;
            table.insert(CURRENT, source).map_err(store_err)?;
        }
        tx.commit().map_err(store_err)
    }

    /// Every channel's publish key digests (a row of another length is skipped).
    pub fn publish_keys(&self) -> Result<Vec<ChannelKeys>, StoreError> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let table = tx.open_table(PUBLISH_KEYS).map_err(store_err)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(store_err)? {
            let (k, v) = row.map_err(store_err)?;
            let bytes = v.value();
            if bytes.len() % 32 != 0 {
                continue;
            }
            let digests = bytes
                .chunks_exact(32)
                .map(|c| <[u8; 32]>::try_from(c).unwrap_or_default())
                .collect();
            out.push((k.value().to_string(), digests));
        }
        Ok(out)
    }

    /// Keeps `channel`'s publish key digests (none: the row goes), durably.
    pub fn save_publish_keys(&self, channel: &str, digests: &[[u8; 32]]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = tx.open_table(PUBLISH_KEYS).map_err(store_err)?;
            match digests.is_empty() {
                true => {
                    table.remove(channel).map_err(store_err)?;
                }
                false => {
                    table
                        .insert(channel, digests.concat().as_slice())
                        .map_err(store_err)?;
                }
            }
        }
        tx.commit().map_err(store_err)
    }

    /// Every node's history record.
    pub fn node_histories(&self) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let table = tx.open_table(NODE_HISTORY).map_err(store_err)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(store_err)? {
            let (k, v) = row.map_err(store_err)?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Replaces the whole node history with `records` in one transaction.
    pub fn save_node_histories(&self, records: &[(u32, Vec<u8>)]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(store_err)?;
        tx.delete_table(NODE_HISTORY).map_err(store_err)?;
        {
            let mut table = tx.open_table(NODE_HISTORY).map_err(store_err)?;
            for (id, bytes) in records {
                table.insert(*id, bytes.as_slice()).map_err(store_err)?;
            }
        }
        tx.commit().map_err(store_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tiercast-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn each_start_on_a_store_has_the_next_epoch() {
        let d = dir("epoch");
        {
            let s = CoordinatorStore::open(&d).unwrap();
            assert_eq!(s.next_epoch().unwrap(), 1);
        }
        let s = CoordinatorStore::open(&d).unwrap();
        assert_eq!(s.next_epoch().unwrap(), 2);
        assert_eq!(s.next_epoch().unwrap(), 3);
        drop(s);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn policy_and_history_survive_reopening_and_a_second_opener_is_refused() {
        let d = dir("reopen");
        {
            let s = CoordinatorStore::open(&d).unwrap();
            assert_eq!(s.policy_source().unwrap(), None);
            s.save_policy("a = 1").unwrap();
            s.save_policy("b = 2").unwrap();
            s.save_node_histories(&[(7, vec![1, 2]), (9, vec![3])])
                .unwrap();
            s.save_node_histories(&[(7, vec![4])]).unwrap();
            assert!(
                CoordinatorStore::open(&d).is_err(),
                "one coordinator per data dir"
            );
        }
        let s = CoordinatorStore::open(&d).unwrap();
        assert_eq!(s.policy_source().unwrap().as_deref(), Some("b = 2"));
        assert_eq!(s.publish_keys().unwrap(), Vec::new());
        s.save_publish_keys("live", &[[1; 32], [2; 32]]).unwrap();
        s.save_publish_keys("gone", &[[3; 32]]).unwrap();
        s.save_publish_keys("gone", &[]).unwrap();
        assert_eq!(
            s.publish_keys().unwrap(),
            vec![("live".to_string(), vec![[1; 32], [2; 32]])]
        );
        assert_eq!(s.node_histories().unwrap(), vec![(7, vec![4])]);
        drop(s);
        let _ = std::fs::remove_dir_all(&d);
    }
}
