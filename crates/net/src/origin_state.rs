//! What an origin keeps across its restarts (X1, X3, D7), in its data directory:
//!
//! - `origin.key` — its Ed25519 signing key (PKCS#8, PEM), created on first start
//!   unless a key file is given, so a restarted origin signs with the key every
//!   relay already checks;
//! - `next_seq` — the seq of the next block it will cut, written after every
//!   block (a 21-byte overwrite in place; the page cache survives a `kill -9`)
//!   and flushed to disk at most once a second, so a restarted origin continues
//!   the seq space instead of starting at 0 (whose blocks every node would drop
//!   as duplicates).
//!
//! Keys are read as PEM (`-----BEGIN PRIVATE KEY-----`) or DER, PKCS#8 v1
//! (OpenSSL's `genpkey -algorithm ed25519`) or v2 (`tiercast keygen`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;
use tiercast_proto::OriginKey;

pub const KEY_FILE: &str = "origin.key";
pub const SEQ_FILE: &str = "next_seq";
const PEM_TAG: &str = "PRIVATE KEY";
const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Error)]
pub enum OriginStateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an Ed25519 PKCS#8 key (PEM or DER)")]
    BadKey { path: PathBuf },
    #[error("{path} exists: refusing to overwrite a key (remove it first, or pass --force)")]
    Exists { path: PathBuf },
    #[error("{path} does not hold a seq number")]
    BadSeq { path: PathBuf },
    #[error("could not generate a key")]
    Generate,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OriginStateError + '_ {
    move |source| OriginStateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a key file: PEM or DER PKCS#8.
pub fn read_key(path: &Path) -> Result<OriginKey, OriginStateError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    parse_key(&bytes).ok_or_else(|| OriginStateError::BadKey {
        path: path.to_path_buf(),
    })
}

/// A key from PEM or DER bytes.
pub fn parse_key(bytes: &[u8]) -> Option<OriginKey> {
    if let Ok(p) = pem::parse(bytes) {
        return (p.tag() == PEM_TAG)
            .then(|| OriginKey::from_pkcs8(p.contents()).ok())
            .flatten();
    }
    OriginKey::from_pkcs8(bytes).ok()
}

/// Writes a new key as PEM, readable by its owner only; never overwrites unless `force`.
pub fn write_new_key(path: &Path, force: bool) -> Result<OriginKey, OriginStateError> {
    let key = OriginKey::generate().map_err(|_| OriginStateError::Generate)?;
    let text = pem::encode(&pem::Pem::new(PEM_TAG, key.pkcs8().to_vec()));
    let mut opts = OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            OriginStateError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            io(path)(e)
        }
    })?;
    f.write_all(text.as_bytes()).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    Ok(key)
}

/// The origin's data directory, opened.
pub struct OriginState {
    pub key: OriginKey,
    pub seq: SeqStore,
    /// True when the key was created now (first start in this directory).
    pub key_created: bool,
}

impl OriginState {
    /// Opens (creating) `dir`; the key comes from `key_file` when given, else from
    /// the directory (created there on first start).
    pub fn open(dir: &Path, key_file: Option<&Path>) -> Result<Self, OriginStateError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let (key, key_created) = match key_file {
            Some(p) => (read_key(p)?, false),
            None => {
                let p = dir.join(KEY_FILE);
                if p.exists() {
                    (read_key(&p)?, false)
                } else {
                    (write_new_key(&p, false)?, true)
                }
            }
        };
        let seq = SeqStore::open(&dir.join(SEQ_FILE))?;
        Ok(OriginState {
            key,
            seq,
            key_created,
        })
    }
}

/// The next seq to cut, kept in a file.
pub struct SeqStore {
    path: PathBuf,
    file: File,
    next: u64,
    flushed_at: Option<Instant>,
}

impl SeqStore {
    pub fn open(path: &Path) -> Result<Self, OriginStateError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io(path))?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(io(path))?;
        let next = match text.trim() {
            "" => 0,
            t => t.parse().map_err(|_| OriginStateError::BadSeq {
                path: path.to_path_buf(),
            })?,
        };
        Ok(SeqStore {
            path: path.to_path_buf(),
            file,
            next,
            flushed_at: None,
        })
    }

    /// The seq of the next block.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Never cut below `seq` (what the coordinator says the overlay has reached).
    pub fn raise_to(&mut self, seq: u64) -> Result<(), OriginStateError> {
        if seq > self.next {
            self.set(seq)?;
        }
        Ok(())
    }

    /// The block `next()` was cut: the next one is one above.
    pub fn advance(&mut self) -> Result<u64, OriginStateError> {
        let seq = self.next;
        self.set(seq + 1)?;
        Ok(seq)
    }

    fn set(&mut self, next: u64) -> Result<(), OriginStateError> {
        self.next = next;
        // Fixed width: an overwrite in place never leaves a shorter tail behind.
        let line = format!("{next:020}\n");
        let path = self.path.clone();
        self.file.seek(SeekFrom::Start(0)).map_err(io(&path))?;
        self.file.write_all(line.as_bytes()).map_err(io(&path))?;
        if self.flushed_at.is_none_or(|t| t.elapsed() >= FLUSH_EVERY) {
            self.file.sync_data().map_err(io(&path))?;
            self.flushed_at = Some(Instant::now());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tiercast-origin-state-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn key_and_seq_survive_a_restart() {
        let d = dir("restart");
        let first = OriginState::open(&d, None).unwrap();
        assert!(first.key_created);
        let mut seq = first.seq;
        for want in 0..5 {
            assert_eq!(seq.advance().unwrap(), want);
        }
        let pk = first.key.public_key();
        drop(seq);
        let again = OriginState::open(&d, None).unwrap();
        assert!(!again.key_created);
        assert_eq!(again.key.public_key(), pk);
        assert_eq!(again.seq.next(), 5);
        let mut s = again.seq;
        s.raise_to(3).unwrap();
        assert_eq!(s.next(), 5, "never lowered");
        s.raise_to(900).unwrap();
        drop(s);
        assert_eq!(SeqStore::open(&d.join(SEQ_FILE)).unwrap().next(), 900);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn keys_are_read_as_pem_or_der_v1_or_v2_and_garbage_is_refused() {
        let d = dir("keys");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("k.pem");
        let k = write_new_key(&p, false).unwrap();
        assert!(matches!(
            write_new_key(&p, false),
            Err(OriginStateError::Exists { .. })
        ));
        assert_eq!(read_key(&p).unwrap().public_key(), k.public_key());
        let der = d.join("k.der");
        std::fs::write(&der, k.pkcs8()).unwrap();
        assert_eq!(read_key(&der).unwrap().public_key(), k.public_key());
        // RFC 8410 v1 (OpenSSL's form): the 32-byte seed only.
        let v1_prefix: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let mut v1 = v1_prefix.to_vec();
        v1.extend_from_slice(&[7u8; 32]);
        assert!(parse_key(&v1).is_some(), "PKCS#8 v1 accepted");
        let pem_v1 = pem::encode(&pem::Pem::new("PRIVATE KEY", v1));
        assert!(parse_key(pem_v1.as_bytes()).is_some());
        let bad = d.join("bad");
        std::fs::write(&bad, b"not a key").unwrap();
        assert!(matches!(
            read_key(&bad),
            Err(OriginStateError::BadKey { .. })
        ));
        let _ = std::fs::remove_dir_all(&d);
    }
}
