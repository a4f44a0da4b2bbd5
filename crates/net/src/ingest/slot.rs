//! The one-publisher lock shared by every ingest server of the origin
//! (features X1, X3; issue 17): one channel, one publisher. A second one is
//! refused, or — with `--publisher-takeover` — the live one is told to stop
//! and the new one starts only once it has (so two streams never interleave).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedMutexGuard};

/// How long a taking-over publisher waits for the live one to stop.
pub const TAKEOVER_WAIT: Duration = Duration::from_secs(5);

/// Why the slot could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotBusy {
    /// Another publisher is live and takeover is off.
    Live,
    /// Takeover is on but the live publisher did not stop in time.
    DidNotStop,
}

impl SlotBusy {
    pub fn reason(self) -> &'static str {
        match self {
            SlotBusy::Live => "another publisher is live on this channel",
            SlotBusy::DidNotStop => "the live publisher did not stop for the takeover",
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    lock: Arc<tokio::sync::Mutex<()>>,
    /// The live publisher's stop signal.
    current: Mutex<Option<Arc<Notify>>>,
}

/// Shared by all servers of one origin.
#[derive(Debug, Clone, Default)]
pub struct PublisherSlot(Arc<Inner>);

/// Held by the live publisher; released on drop (also when its task is aborted).
#[derive(Debug)]
pub struct PublisherGuard {
    slot: Arc<Inner>,
    stop: Arc<Notify>,
    _lock: OwnedMutexGuard<()>,
}

impl PublisherSlot {
    fn guard(&self, lock: OwnedMutexGuard<()>) -> PublisherGuard {
        let stop = Arc::new(Notify::new());
        *self.0.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(stop.clone());
        PublisherGuard {
            slot: self.0.clone(),
            stop,
            _lock: lock,
        }
    }

    /// The slot if free.
    pub fn try_take(&self) -> Option<PublisherGuard> {
        let lock = self.0.lock.clone().try_lock_owned().ok()?;
        Some(self.guard(lock))
    }

    /// The slot; with `takeover`, the live publisher is told to stop first.
    pub async fn take(&self, takeover: bool) -> Result<PublisherGuard, SlotBusy> {
        if let Some(g) = self.try_take() {
            return Ok(g);
        }
        if !takeover {
            return Err(SlotBusy::Live);
        }
        let live = self
            .0
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(stop) = live {
            // notify_one keeps a permit if the live session is not waiting yet.
            stop.notify_one();
        }
        match tokio::time::timeout(TAKEOVER_WAIT, self.0.lock.clone().lock_owned()).await {
            Ok(lock) => Ok(self.guard(lock)),
            Err(_) => Err(SlotBusy::DidNotStop),
        }
    }
}

impl PublisherGuard {
    /// Resolves when a new publisher takes over: the session must end.
    pub async fn taken_over(&self) {
        self.stop.notified().await
    }
}

impl Drop for PublisherGuard {
    fn drop(&mut self) {
        let mut current = self.slot.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &self.stop)) {
            *current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_is_refused_without_takeover() {
        let slot = PublisherSlot::default();
        let g = slot.take(false).await.unwrap();
        assert_eq!(slot.take(false).await.unwrap_err(), SlotBusy::Live);
        drop(g);
        assert!(slot.take(false).await.is_ok());
    }

    #[tokio::test]
    async fn takeover_stops_the_live_one_first() {
        let slot = PublisherSlot::default();
        let first = slot.take(false).await.unwrap();
        let live = tokio::spawn(async move {
            first.taken_over().await;
            // The first session winds down, then drops its guard.
            drop(first);
        });
        let second = slot.take(true).await.unwrap();
        live.await.unwrap();
        assert!(slot.try_take().is_none());
        drop(second);
        assert!(slot.try_take().is_some());
    }
}
