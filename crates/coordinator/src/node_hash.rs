//! The hasher of every map keyed by node id on the heartbeat path (X7's
//! 200 000 heartbeats/s on one core; D8). A heartbeat looks up ~15 node ids
//! (its sender in several books, each link's other end); std's SipHash-1-3
//! spends more on a 4-byte key than the lookup's own probe does. `foldhash`'s
//! fast hasher is seeded per process at random, so an outside node choosing
//! its id cannot aim at a bucket it has learnt from another run; the walks of
//! these maps never decide anything by their order (each caller sorts or walks
//! slots).

use std::collections::{HashMap, HashSet};
use tiercast_proto::NodeId;

/// The build-hasher: a random seed per map, drawn from one per process.
pub type NodeHasher = foldhash::fast::RandomState;

/// A hash map keyed by node id with [`NodeHasher`].
pub type NodeHashMap<V> = HashMap<NodeId, V, NodeHasher>;

/// A hash set of node ids with [`NodeHasher`].
pub type NodeHashSet = HashSet<NodeId, NodeHasher>;
