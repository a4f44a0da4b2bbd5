//! The coordinator's decisions as they happened (X5, and the figure tests of V2–V5):
//! `events.log` has one line per `CoordEvent`, `<virtual seconds> <event>`, and a
//! count per event kind goes to metrics.json. The kind is the variant name read
//! from the event's `Debug` form, so kinds added to `CoordEvent` later are logged
//! and counted without a change here.

use crate::world::RunOptions;
use crate::SimError;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use tiercast_coordinator::CoordEvent;

pub(crate) struct EventLog {
    writer: Option<BufWriter<File>>,
    error: Option<String>,
    pub counts: BTreeMap<String, u64>,
    pub kept: Vec<(u64, CoordEvent)>,
}

/// The variant name at the start of a `Debug` rendering.
pub(crate) fn kind_of(debug: &str) -> &str {
    let end = debug
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(debug.len());
    &debug[..end]
}

impl EventLog {
    pub fn open(opts: &RunOptions, enabled: bool) -> Result<Self, SimError> {
        let writer = match (&opts.out_dir, enabled) {
            (Some(dir), true) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| SimError::Io(format!("{}: {e}", dir.display())))?;
                let path = dir.join("events.log");
                let f = File::create(&path)
                    .map_err(|e| SimError::Io(format!("{}: {e}", path.display())))?;
                Some(BufWriter::with_capacity(1 << 20, f))
            }
            _ => None,
        };
        Ok(EventLog {
            writer,
            error: None,
            counts: BTreeMap::new(),
            kept: Vec::new(),
        })
    }

    pub fn record(&mut self, now: u64, e: &CoordEvent) {
        let text = format!("{e:?}");
        let kind = kind_of(&text);
        match self.counts.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.counts.insert(kind.to_string(), 1);
            }
        }
        if let Some(w) = self.writer.as_mut() {
            if let Err(err) = writeln!(w, "{:.6} {text}", now as f64 / 1e6) {
                self.error.get_or_insert(err.to_string());
                self.writer = None;
            }
        }
    }

    pub fn keep(&mut self, now: u64, e: CoordEvent) {
        self.kept.push((now, e));
    }

    /// Flushes the file; the first write error, if any.
    pub fn close(&mut self) -> Result<(), String> {
        if let Some(mut w) = self.writer.take() {
            if let Err(e) = w.flush() {
                self.error.get_or_insert(e.to_string());
            }
        }
        match self.error.take() {
            Some(e) => Err(format!("events.log: {e}")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_variant_name() {
        assert_eq!(kind_of("Activated { channel: ChannelId(1) }"), "Activated");
        assert_eq!(kind_of("NodeTimedOut { node: NodeId(3) }"), "NodeTimedOut");
        assert_eq!(kind_of("Plain"), "Plain");
    }
}
