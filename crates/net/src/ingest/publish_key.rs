//! Publish keys (features X1, X3; issue 17): who may publish the origin's
//! channel. Keys come from `--publish-key` flags and/or a key file; the file is
//! re-read when it changes (polled every second) or on `SIGHUP`, so keys rotate
//! without a restart. A publisher's key is checked when it connects: a stream
//! that is live keeps going after a rotation, a new connection with the old key
//! is refused.
//!
//! Key file: one key a line, either `KEY` (a key for this origin's channel) or
//! `CHANNEL KEY` (lines for other channels are ignored, so one file can serve
//! several origins); blank lines and `#` comments are skipped. A key is 1-128
//! visible ASCII characters other than `,` `#` `/` `?` `&` `=` `%`.
//!
//! Keys may also be kept in the coordinator's store (`tiercast publish-keys
//! set`): the coordinator sends their SHA-256 digests when the origin announces
//! and at every change ([`PublishKeys::set_from_coordinator`]); a publisher's key
//! is then hashed and compared with them. The keys in force are the union of the
//! flags, the file and the coordinator's. With `--publish-keys-from-coordinator`
//! publishers are refused until the coordinator's keys arrive.
//!
//! No key configured means the ingest is open (as before issue 17).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

/// Longest key accepted.
pub const MAX_KEY_CHARS: usize = 128;
/// Largest key file read.
pub const MAX_KEY_FILE_BYTES: u64 = 1 << 20;
/// Most keys kept for the channel.
pub const MAX_KEYS: usize = 1024;
/// How often the key file is checked for changes.
pub const KEY_FILE_POLL: Duration = Duration::from_secs(1);

/// Why a publisher was refused by the key check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    #[error("publish key missing: this origin requires a publish key")]
    Missing,
    #[error("publish key refused: not a key of channel '{0}'")]
    Wrong(String),
    #[error("publish keys not received from the coordinator yet: try again shortly")]
    NotYet,
    #[error("channel '{asked}' is not published here (this origin ingests '{ours}')")]
    OtherChannel { asked: String, ours: String },
}

/// A key file or flag that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyConfigError {
    #[error("{where_}: invalid publish key: {reason}")]
    BadKey { where_: String, reason: String },
    #[error("key file {path}: {reason}")]
    File { path: String, reason: String },
}

/// Checks a key's form; the reason is for the operator.
pub fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_CHARS {
        return Err(format!("give 1-{MAX_KEY_CHARS} characters"));
    }
    match key
        .chars()
        .find(|c| !c.is_ascii_graphic() || ",#/?&=%".contains(*c))
    {
        Some(c) => Err(format!("character {c:?} not allowed")),
        None => Ok(()),
    }
}

/// Parses a key file's text: the keys for `channel`.
pub fn parse_key_file(
    text: &str,
    channel: &str,
    path: &str,
) -> Result<Vec<String>, KeyConfigError> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (first, second, rest) = (words.next(), words.next(), words.next());
        let key = match (first, second, rest) {
            (Some(k), None, _) => k,
            (Some(ch), Some(k), None) if ch == channel => k,
            (Some(_), Some(_), None) => continue,
            _ => {
                return Err(KeyConfigError::BadKey {
                    where_: format!("{path} line {}", n + 1),
                    reason: "give KEY or CHANNEL KEY".into(),
                })
            }
        };
        validate_key(key).map_err(|reason| KeyConfigError::BadKey {
            where_: format!("{path} line {}", n + 1),
            reason,
        })?;
        if keys.len() >= MAX_KEYS {
            return Err(KeyConfigError::File {
                path: path.into(),
                reason: format!("more than {MAX_KEYS} keys for channel '{channel}'"),
            });
        }
        keys.push(key.to_string());
    }
    Ok(keys)
}

/// Compares without an early exit on the first differing byte.
fn same_key(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[derive(Debug, Default)]
struct KeySet {
    /// From flags; never change.
    fixed: Vec<String>,
    /// From the file; replaced on reload.
    from_file: Vec<String>,
    /// SHA-256 digests from the coordinator's store; replaced at each update.
    from_coordinator: Vec<[u8; 32]>,
    /// The file's modification time at the last read.
    file_mtime: Option<SystemTime>,
}

/// The channel's publish keys, shared by every ingest server and reloadable.
#[derive(Debug, Clone)]
pub struct PublishKeys {
    channel: String,
    file: Option<PathBuf>,
    /// Publishers need a key from the coordinator even before any arrives.
    await_coordinator: bool,
    set: Arc<RwLock<KeySet>>,
}

/// The SHA-256 digest of a publish key, as the coordinator keeps and sends it.
pub fn key_digest(key: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl PublishKeys {
    /// No key: anyone may publish.
    pub fn open(channel: &str) -> Self {
        PublishKeys {
            channel: channel.to_string(),
            file: None,
            await_coordinator: false,
            set: Arc::default(),
        }
    }

    /// Keys from flags and an optional file (read now: a bad file is an error).
    pub fn new(
        channel: &str,
        keys: &[String],
        file: Option<&Path>,
    ) -> Result<Self, KeyConfigError> {
        for k in keys {
            validate_key(k).map_err(|reason| KeyConfigError::BadKey {
                where_: "--publish-key".into(),
                reason,
            })?;
        }
        let me = PublishKeys {
            channel: channel.to_string(),
            file: file.map(Path::to_path_buf),
            await_coordinator: false,
            set: Arc::new(RwLock::new(KeySet {
                fixed: keys.to_vec(),
                ..KeySet::default()
            })),
        };
        me.reload()?;
        Ok(me)
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeySet> {
        self.set.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishers are refused until the coordinator's keys arrive
    /// (`--publish-keys-from-coordinator`).
    pub fn awaiting_coordinator(mut self) -> Self {
        self.await_coordinator = true;
        self
    }

    /// True when publishers must give a key (a key flag, a key file, keys from
    /// the coordinator, or keys awaited from it).
    pub fn required(&self) -> bool {
        self.file.is_some()
            || self.await_coordinator
            || !self.read().fixed.is_empty()
            || !self.read().from_coordinator.is_empty()
    }

    /// Keys now in force.
    pub fn count(&self) -> usize {
        let s = self.read();
        s.fixed.len() + s.from_file.len() + s.from_coordinator.len()
    }

    /// The coordinator's keys for `channel` (digests) replace the ones it sent
    /// before; keys for another channel are ignored (false).
    pub fn set_from_coordinator(&self, channel: &str, digests: Vec<[u8; 32]>) -> bool {
        if channel != self.channel {
            return false;
        }
        let count = digests.len();
        self.set
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .from_coordinator = digests;
        info!(channel, keys = count, "publish keys from the coordinator");
        true
    }

    /// Checks a publisher's key and, when it names one, channel.
    pub fn check(&self, channel: Option<&str>, key: Option<&str>) -> Result<(), KeyRefusal> {
        if let Some(asked) = channel.filter(|c| !c.is_empty()) {
            if asked != self.channel {
                return Err(KeyRefusal::OtherChannel {
                    asked: asked.chars().take(64).collect(),
                    ours: self.channel.clone(),
                });
            }
        }
        if !self.required() {
            return Ok(());
        }
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            return Err(KeyRefusal::Missing);
        };
        let s = self.read();
        // Every key is compared, so the time taken does not tell which matched.
        let found = s
            .fixed
            .iter()
            .chain(s.from_file.iter())
            .fold(false, |found, k| same_key(k, key) | found);
        let digest = key_digest(key);
        let found = s.from_coordinator.iter().fold(found, |found, d| {
            (d.iter().zip(&digest).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0) | found
        });
        let none_yet = self.await_coordinator
            && self.file.is_none()
            && s.fixed.is_empty()
            && s.from_coordinator.is_empty();
        match (found, none_yet) {
            (true, _) => Ok(()),
            (false, true) => Err(KeyRefusal::NotYet),
            (false, false) => Err(KeyRefusal::Wrong(self.channel.clone())),
        }
    }

    /// Re-reads the key file; on error the keys in force stay.
    pub fn reload(&self) -> Result<(), KeyConfigError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let shown = path.display().to_string();
        let file_err = |reason: String| KeyConfigError::File {
            path: shown.clone(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| file_err(e.to_string()))?;
        if meta.len() > MAX_KEY_FILE_BYTES {
            return Err(file_err(format!("larger than {MAX_KEY_FILE_BYTES} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let keys = parse_key_file(&text, &self.channel, &shown)?;
        let mut s = self.set.write().unwrap_or_else(|p| p.into_inner());
        s.from_file = keys;
        s.file_mtime = meta.modified().ok();
        Ok(())
    }

    /// The file's modification time differs from the one last read.
    fn file_changed(&self) -> bool {
        let Some(path) = &self.file else {
            return false;
        };
        let now = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        now != self.read().file_mtime
    }

    fn reload_logged(&self, why: &str) {
        match self.reload() {
            Ok(()) => info!(keys = self.count(), why, "publish keys reloaded"),
            Err(e) => {
                warn!(error = %e, why, "publish keys: reload failed, keeping the keys in force")
            }
        }
    }

    /// Watches the key file (changes and `SIGHUP`) until the task is dropped.
    pub fn spawn_watcher(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.file.as_ref()?;
        let keys = self.clone();
        Some(tokio::spawn(async move {
            #[cfg(unix)]
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut poll = tokio::time::interval(KEY_FILE_POLL);
            loop {
                #[cfg(unix)]
                let hangup = async {
                    match hup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let hangup = std::future::pending::<Option<()>>();
                tokio::select! {
                    _ = poll.tick() => {
                        if keys.file_changed() {
                            keys.reload_logged("key file changed");
                        }
                    }
                    _ = hangup => keys.reload_logged("SIGHUP"),
                }
            }
        }))
    }
}

/// `%XX` escapes decoded (some ffmpeg builds pass a URL's `streamid` as
/// written, others decode it); an invalid escape is kept as is.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits an SRT stream id into (channel, key): `#!::r=CHANNEL,k=KEY` (the
/// SRT access-control syntax; other fields ignored) or a plain `KEY`; a
/// URL-encoded id (`%23!::...`) is decoded first.
pub fn parse_srt_stream_id(id: &str) -> (Option<String>, Option<String>) {
    let decoded = percent_decode(id);
    let id = decoded.as_str();
    let Some(fields) = id.strip_prefix("#!::") else {
        return (None, Some(id.trim().to_string()).filter(|k| !k.is_empty()));
    };
    let (mut channel, mut key) = (None, None);
    for field in fields.split(',') {
        match field.split_once('=') {
            Some(("r", v)) => channel = Some(v.to_string()),
            Some(("k", v)) => key = Some(v.to_string()),
            _ => {}
        }
    }
    (channel, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids() {
        assert_eq!(
            parse_srt_stream_id("#!::r=live,k=abc"),
            (Some("live".into()), Some("abc".into()))
        );
        assert_eq!(
            parse_srt_stream_id("#!::u=bob,k=abc,m=publish"),
            (None, Some("abc".into()))
        );
        assert_eq!(parse_srt_stream_id("abc"), (None, Some("abc".into())));
        assert_eq!(
            parse_srt_stream_id("%23%21%3A%3Ar%3Dlive%2Ck%3Dabc"),
            (Some("live".into()), Some("abc".into()))
        );
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(parse_srt_stream_id(""), (None, None));
        assert_eq!(parse_srt_stream_id("#!::"), (None, None));
    }

    #[test]
    fn open_accepts_any_key_for_its_channel() {
        let k = PublishKeys::open("live");
        assert!(k.check(None, None).is_ok());
        assert!(k.check(Some("live"), Some("x")).is_ok());
        assert!(matches!(
            k.check(Some("other"), None),
            Err(KeyRefusal::OtherChannel { .. })
        ));
    }

    #[test]
    fn keys_are_checked() {
        let k = PublishKeys::new("live", &["s3cret".into()], None).unwrap();
        assert_eq!(k.check(None, None), Err(KeyRefusal::Missing));
        assert_eq!(k.check(None, Some("")), Err(KeyRefusal::Missing));
        assert_eq!(
            k.check(None, Some("s3cre")),
            Err(KeyRefusal::Wrong("live".into()))
        );
        assert_eq!(
            k.check(None, Some("s3cret!")),
            Err(KeyRefusal::Wrong("live".into()))
        );
        assert!(k.check(Some("live"), Some("s3cret")).is_ok());
    }

    #[test]
    fn the_coordinators_digests_are_checked_beside_the_flags_and_replaced_whole() {
        let k = PublishKeys::new("live", &["flag-key".into()], None).unwrap();
        assert!(!k.set_from_coordinator("other", vec![key_digest("x")]));
        assert!(k.set_from_coordinator("live", vec![key_digest("rot-1")]));
        assert_eq!(k.count(), 2);
        assert!(k.check(None, Some("rot-1")).is_ok());
        assert!(k.check(None, Some("flag-key")).is_ok());
        assert!(k.set_from_coordinator("live", vec![key_digest("rot-2")]));
        assert_eq!(
            k.check(None, Some("rot-1")),
            Err(KeyRefusal::Wrong("live".into()))
        );
        assert!(k.check(None, Some("rot-2")).is_ok());
        // Keys from the coordinator alone make keys required.
        let open = PublishKeys::open("live");
        assert!(open.check(None, None).is_ok());
        open.set_from_coordinator("live", vec![key_digest("k")]);
        assert_eq!(open.check(None, None), Err(KeyRefusal::Missing));
        open.set_from_coordinator("live", Vec::new());
        assert!(open.check(None, None).is_ok(), "taken away: open again");
    }

    #[test]
    fn awaiting_the_coordinator_refuses_until_its_keys_arrive() {
        let k = PublishKeys::open("live").awaiting_coordinator();
        assert!(k.required());
        assert_eq!(k.check(None, None), Err(KeyRefusal::Missing));
        assert_eq!(k.check(None, Some("k")), Err(KeyRefusal::NotYet));
        k.set_from_coordinator("live", vec![key_digest("k")]);
        assert!(k.check(None, Some("k")).is_ok());
        k.set_from_coordinator("live", Vec::new());
        assert_eq!(k.check(None, Some("k")), Err(KeyRefusal::NotYet));
    }

    #[test]
    fn bad_keys_are_refused_at_start() {
        assert!(PublishKeys::new("live", &["a b".into()], None).is_err());
        assert!(PublishKeys::new("live", &["".into()], None).is_err());
        assert!(PublishKeys::new("live", &["x".repeat(129)], None).is_err());
        assert!(PublishKeys::new("live", &["a,b".into()], None).is_err());
    }

    #[test]
    fn key_file_lines() {
        let text = "# keys\nk1\nlive k2  # the second\nother k3\n\n";
        assert_eq!(parse_key_file(text, "live", "f").unwrap(), vec!["k1", "k2"]);
        assert!(parse_key_file("a b c\n", "live", "f").is_err());
        assert!(parse_key_file("live a=b\n", "live", "f").is_err());
    }

    #[test]
    fn key_file_reload_rotates() {
        let dir = std::env::temp_dir().join(format!("tiercast-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys");
        std::fs::write(&path, "old\n").unwrap();
        let k = PublishKeys::new("live", &[], Some(&path)).unwrap();
        assert!(k.check(None, Some("old")).is_ok());
        std::fs::write(&path, "new\n").unwrap();
        k.reload().unwrap();
        assert!(k.check(None, Some("new")).is_ok());
        assert!(k.check(None, Some("old")).is_err());
        // A broken file keeps the keys in force.
        std::fs::write(&path, "a b c\n").unwrap();
        assert!(k.reload().is_err());
        assert!(k.check(None, Some("new")).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
