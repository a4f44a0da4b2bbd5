//! A node's history as bytes for the store (issue 11 item 6): a version byte
//! then the record in postcard. Bytes read back are outside input: a record that
//! does not decode, or of another version, is refused (`None`), never a panic.

use super::record::NodeHistory;

/// The encoding's version.
pub const VERSION: u8 = 1;

pub fn encode(h: &NodeHistory) -> Vec<u8> {
    let mut out = vec![VERSION];
    out.extend(postcard::to_allocvec(h).expect("a history record always serialises"));
    out
}

pub fn decode(bytes: &[u8]) -> Option<NodeHistory> {
    let (version, rest) = bytes.split_first()?;
    if *version != VERSION {
        return None;
    }
    postcard::from_bytes(rest).ok()
}
