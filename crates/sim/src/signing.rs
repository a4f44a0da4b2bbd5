//! Origin signatures in the simulator (X3; issue 13: simulated nodes check
//! blocks as real ones do): the simulated origin signs every block it cuts with
//! an Ed25519 key of its own, as `tiercast origin` does, and every node checks
//! each block against the channel's key before storing or forwarding it (the
//! node machine's own check, `verify_blocks`). A scenario may turn checking off
//! for speed (`verify_blocks = false`, reported as `blocks_verified`).
//!
//! The `tamper` fault (issue 18's liar) makes nodes alter the payload of every
//! block they send; their children's check rejects it (`rejected_blocks`), and
//! a block a viewer counts that is not the origin's is counted in
//! `tampered_blocks_viewed` — 0 whenever blocks are checked.

use bytes::Bytes;
use std::collections::BTreeMap;
use tiercast_proto::auth::PUBLIC_KEY_LEN;
use tiercast_proto::{Block, Message, OriginKey, VerifyMemo};

pub(crate) struct Signing {
    /// `None`: blocks are neither signed nor checked.
    key: Option<OriginKey>,
    /// Blocks found genuine, shared by every node: each block is hashed and
    /// checked once, not once per node (the same answer, `VerifyMemo`).
    memo: VerifyMemo,
    /// Tampering nodes by the fault that made them so.
    tampering: BTreeMap<usize, Vec<u32>>,
}

impl Signing {
    pub(crate) fn new(verify: bool) -> Self {
        Signing {
            key: verify.then(|| OriginKey::generate().expect("an Ed25519 key")),
            memo: VerifyMemo::default(),
            tampering: BTreeMap::new(),
        }
    }

    pub(crate) fn verifies(&self) -> bool {
        self.key.is_some()
    }

    /// What every node checks through (`None` when nothing is checked).
    pub(crate) fn memo(&self) -> Option<VerifyMemo> {
        self.verifies().then(|| self.memo.clone())
    }

    /// The channel's public key the origin announces (zero when unsigned).
    pub(crate) fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.key
            .as_ref()
            .map_or([0; PUBLIC_KEY_LEN], |k| k.public_key())
    }

    /// Signs a block the origin cut.
    pub(crate) fn sign(&self, block: &mut Block) {
        if let Some(k) = &self.key {
            k.sign(block);
        }
    }

    /// Fault `fault` makes `ids` alter what they send.
    pub(crate) fn tamper(&mut self, fault: usize, ids: &[u32]) {
        self.tampering.insert(fault, ids.to_vec());
    }

    /// Fault `fault` is over: its nodes send what they hold again.
    pub(crate) fn honest_again(&mut self, fault: usize) {
        self.tampering.remove(&fault);
    }

    fn tampers(&self, id: u32) -> bool {
        self.tampering
            .values()
            .any(|ids| ids.binary_search(&id).is_ok())
    }

    /// What `from` puts on the wire: `msg`, or a block with its payload
    /// altered when `from` tampers (the signature left as it was).
    pub(crate) fn outgoing(&self, from: u32, msg: Message) -> Message {
        if self.tampering.is_empty() || !self.tampers(from) {
            return msg;
        }
        match msg {
            Message::Block(mut b) => {
                let mut p = b.payload.to_vec();
                match p.first_mut() {
                    Some(x) => *x ^= 0xff,
                    None => p.push(0xff),
                }
                b.payload = Bytes::from(p);
                Message::Block(b)
            }
            other => other,
        }
    }
}

/// Whether a block a viewer counts carries another payload than the origin's
/// (`origin`: the payload every block of the channel is cut with).
pub(crate) fn altered(block: &Block, origin: &Bytes) -> bool {
    block.payload.as_ptr() != origin.as_ptr() && block.payload != *origin
}
