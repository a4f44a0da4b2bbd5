//! Blocks already found genuine, shared by the nodes of one process (X3; issue
//! 13: the simulator runs thousands of nodes in one process, and each would
//! hash and check the same block again). A block is remembered by the channel
//! key, every signed header field, its signature and its payload *allocation*
//! (pointer and length — the memo holds a clone of the payload, so that
//! allocation cannot be freed and reused while remembered): a block whose
//! payload, header or signature differs in any way is checked afresh. Only
//! successes are remembered; a bounded FIFO of [`MEMO_BLOCKS`] entries.
//!
//! The answer is exactly [`crate::OriginVerifier::verify`]'s: a real node runs
//! without a memo; the simulator gives all its nodes one.

use crate::block::Block;
use bytes::Bytes;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

/// Blocks remembered at most.
pub const MEMO_BLOCKS: usize = 8192;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    public_key: [u8; 32],
    header: [u8; 21],
    signature: [u8; 64],
    payload: (usize, usize),
}

#[derive(Default)]
struct Inner {
    order: VecDeque<(Key, Bytes)>,
    known: HashSet<Key>,
}

/// See the module documentation.
#[derive(Clone, Default)]
pub struct VerifyMemo(Arc<Mutex<Inner>>);

impl std::fmt::Debug for VerifyMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyMemo({} blocks)", self.len())
    }
}

fn key(public_key: &[u8; 32], block: &Block) -> Key {
    let digest_head = |b: &Block| {
        let mut h = [0u8; 21];
        h[0..4].copy_from_slice(&b.channel.0.to_be_bytes());
        h[4..12].copy_from_slice(&b.seq.to_be_bytes());
        h[12..20].copy_from_slice(&b.origin_time_us.to_be_bytes());
        h[20] = b.flags;
        h
    };
    Key {
        public_key: *public_key,
        header: digest_head(block),
        signature: block.signature,
        payload: (block.payload.as_ptr() as usize, block.payload.len()),
    }
}

impl VerifyMemo {
    /// Whether this very block was found genuine under `public_key`.
    pub fn knows(&self, public_key: &[u8; 32], block: &Block) -> bool {
        let k = key(public_key, block);
        self.0.lock().is_ok_and(|m| m.known.contains(&k))
    }

    /// Remembers that this very block is genuine under `public_key`.
    pub fn remember(&self, public_key: &[u8; 32], block: &Block) {
        let k = key(public_key, block);
        let Ok(mut m) = self.0.lock() else { return };
        if !m.known.insert(k.clone()) {
            return;
        }
        m.order.push_back((k, block.payload.clone()));
        if m.order.len() > MEMO_BLOCKS {
            if let Some((old, _)) = m.order.pop_front() {
                m.known.remove(&old);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.lock().map_or(0, |m| m.order.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
