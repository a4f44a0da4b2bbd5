//! One node's claims on its uplink, by channel (C9, V8): a [`SmallMap`] by
//! channel id — nearly every node holds one share (one channel). Walks go by
//! ascending channel id.

use super::lending::Claim;
use crate::small_map::SmallMap;
use tiercast_proto::ChannelId;

pub(super) type Claims = SmallMap<ChannelId, Claim>;
