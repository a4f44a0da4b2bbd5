//! A node's record of each parent's link as its child saw it (C4's history,
//! issue 11 item 5): a [`SmallMap`] by parent id — a peer has a handful of
//! parents (bounded by the history's `max_parents`). Its stored bytes are an
//! ordered map's, so records written before still read.

use super::record::LinkRecord;
use crate::small_map::SmallMap;
use tiercast_proto::NodeId;

pub type ParentLinks = SmallMap<NodeId, LinkRecord>;
