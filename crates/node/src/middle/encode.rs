//! The encoding side of the middle level (D5): a node with coded children runs
//! one erasure encoder per (k, n) in use; every block it stores goes in, and once
//! a group's k blocks are in, each coded child gets the recovery shards its mask
//! asks for.

use super::{block_body, Middle, MAX_ENCODERS, SHARD_HEADER_LEN};
use crate::node::Node;
use crate::strategy::erasure::{ErasureEncoder, ErasureParams, RecoveryGroup};
use std::collections::BTreeSet;
use tiercast_proto::{Block, Message, Timestamp};

impl Middle {
    /// Feeds a stored block to the encoders of the coded children's layouts;
    /// returns the groups completed, with their layout.
    fn encode(
        &mut self,
        layouts: &BTreeSet<(u8, u8)>,
        block: &Block,
    ) -> Vec<((u8, u8), RecoveryGroup)> {
        self.encoders.retain(|l, _| layouts.contains(l));
        for &(k, n) in layouts {
            if self.encoders.len() >= MAX_ENCODERS {
                break;
            }
            if let Ok(p) = ErasureParams::new(usize::from(k), usize::from(n)) {
                self.encoders
                    .entry((k, n))
                    .or_insert_with(|| ErasureEncoder::new(p));
            }
        }
        if self.encoders.is_empty() {
            return Vec::new();
        }
        let body = block_body(block);
        let mut done = Vec::new();
        for ((k, n), enc) in self.encoders.iter_mut() {
            if let Ok(Some(g)) = enc.push(block.seq, body.clone()) {
                done.push(((*k, *n), g));
            }
        }
        done
    }
}

impl Node {
    /// The encoders' side: once a stored block completes a group, each coded child
    /// gets the recovery shards its mask asks for.
    pub(super) fn send_recovery(&mut self, now: Timestamp, block: &Block) {
        let channel = block.channel;
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        let layouts: BTreeSet<(u8, u8)> = ch
            .children
            .nodes
            .values()
            .filter_map(|l| l.feed.coded())
            .filter(|c| c.recovery().next().is_some())
            .map(|c| (c.k, c.n))
            .collect();
        if layouts.is_empty() && ch.middle.encoders.is_empty() {
            return;
        }
        let groups = ch.middle.encode(&layouts, block);
        let mut out = Vec::new();
        for ((k, n), g) in groups {
            for (child, link) in ch.children.nodes.iter_mut() {
                let Some(c) = link.feed.coded().filter(|c| (c.k, c.n) == (k, n)) else {
                    continue;
                };
                for j in c.recovery() {
                    let Some(data) = g.shards.get(usize::from(j)) else {
                        continue;
                    };
                    link.last_sent_at = Some(now);
                    out.push((
                        *child,
                        Message::Shard {
                            channel,
                            group: g.group,
                            k,
                            n,
                            index: j,
                            data: data.to_vec(),
                        },
                    ));
                }
            }
        }
        for (child, msg) in out {
            if let Message::Shard { data, .. } = &msg {
                self.stats.shards_out += 1;
                self.stats.bytes_out += (SHARD_HEADER_LEN + data.len()) as u64;
            }
            self.send(child, msg);
        }
    }
}
