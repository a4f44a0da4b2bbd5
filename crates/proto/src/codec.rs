//! Framing of messages on a byte stream: `[u32 BE length][u8 version][u8 kind][body]`.
//! Control messages are postcard; blocks have a fixed binary header followed by the
//! payload, which is sliced out of the received buffer without copying; a
//! coordinator's order is its epoch (a postcard varint) followed by the control
//! message it carries (never an order or a block: neither can be written in
//! postcard, so orders do not nest).
//!
//! Outside input never panics here: an oversized frame is skipped (its bytes are
//! discarded as they arrive) and reported, a malformed one is reported, and the
//! decoder carries on with the next frame.

use crate::block::{Block, SIGNATURE_LEN};
use crate::ids::ChannelId;
use crate::message::Message;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

pub const PROTOCOL_VERSION: u8 = 3;
const KIND_CONTROL: u8 = 0;
const KIND_BLOCK: u8 = 1;
const KIND_ORDER: u8 = 2;
/// Largest frame accepted by default (length field value).
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;
/// Block header after version and kind: channel, seq, origin time, flags, signature.
pub const BLOCK_HEADER_LEN: usize = 4 + 8 + 8 + 1 + SIGNATURE_LEN;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    Oversized { len: usize, max: usize },
    #[error("frame too short ({0} bytes)")]
    Truncated(usize),
    #[error("unsupported protocol version {0}")]
    Version(u8),
    #[error("unknown frame kind {0}")]
    Kind(u8),
    #[error("malformed control message: {0}")]
    Malformed(String),
    #[error("message cannot be encoded: {0}")]
    Encode(String),
}

/// Encodes one message as a frame appended to `out`.
pub fn encode_frame(msg: &Message, out: &mut BytesMut) -> Result<(), CodecError> {
    match msg {
        Message::Block(b) => {
            out.reserve(4 + 2 + BLOCK_HEADER_LEN);
            out.put_u32((2 + BLOCK_HEADER_LEN + b.payload.len()) as u32);
            put_block_header(b, out);
            out.extend_from_slice(&b.payload);
        }
        Message::Order { epoch, order } => {
            let mut body =
                postcard::to_allocvec(epoch).map_err(|e| CodecError::Encode(e.to_string()))?;
            body = postcard::to_extend(order.as_ref(), body)
                .map_err(|e| CodecError::Encode(e.to_string()))?;
            out.put_u32((2 + body.len()) as u32);
            out.put_u8(PROTOCOL_VERSION);
            out.put_u8(KIND_ORDER);
            out.extend_from_slice(&body);
        }
        other => {
            let body =
                postcard::to_allocvec(other).map_err(|e| CodecError::Encode(e.to_string()))?;
            out.put_u32((2 + body.len()) as u32);
            out.put_u8(PROTOCOL_VERSION);
            out.put_u8(KIND_CONTROL);
            out.extend_from_slice(&body);
        }
    }
    Ok(())
}

/// Bytes `msg` occupies on the wire as a frame (length field included), without
/// encoding it: what an uplink cap charges and the simulator's network carries.
pub fn frame_len(msg: &Message) -> usize {
    match msg {
        Message::Block(b) => block_frame_len(b),
        Message::Order { epoch, order } => {
            let epoch_len = postcard::serialize_with_flavor::<u64, _, usize>(
                epoch,
                postcard::ser_flavors::Size::default(),
            )
            .unwrap_or(0);
            4 + 2 + epoch_len + control_len(order)
        }
        other => 4 + 2 + control_len(other),
    }
}

/// A control message's postcard length.
fn control_len(msg: &Message) -> usize {
    postcard::serialize_with_flavor::<Message, _, usize>(
        msg,
        postcard::ser_flavors::Size::default(),
    )
    .unwrap_or(0)
}

/// Bytes a block's frame takes on the wire (length field, version, kind, header, payload).
pub fn block_frame_len(b: &Block) -> usize {
    4 + 2 + BLOCK_HEADER_LEN + b.payload.len()
}

/// Encodes a block's frame head (length, version, kind, header) so a driver can send
/// it followed by the payload `Bytes` with a vectored write, never copying the payload.
pub fn encode_block_head(b: &Block) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + 2 + BLOCK_HEADER_LEN);
    out.put_u32((2 + BLOCK_HEADER_LEN + b.payload.len()) as u32);
    put_block_header(b, &mut out);
    out.freeze()
}

fn put_block_header(b: &Block, out: &mut BytesMut) {
    out.put_u8(PROTOCOL_VERSION);
    out.put_u8(KIND_BLOCK);
    out.put_u32(b.channel.0);
    out.put_u64(b.seq);
    out.put_u64(b.origin_time_us);
    out.put_u8(b.flags);
    out.extend_from_slice(&b.signature);
}

/// Decodes one frame body (what follows the length field).
pub fn decode_frame(mut body: Bytes) -> Result<Message, CodecError> {
    if body.len() < 2 {
        return Err(CodecError::Truncated(body.len()));
    }
    let version = body.get_u8();
    if version != PROTOCOL_VERSION {
        return Err(CodecError::Version(version));
    }
    match body.get_u8() {
        KIND_CONTROL => {
            let msg: Message =
                postcard::from_bytes(&body).map_err(|e| CodecError::Malformed(e.to_string()))?;
            Ok(msg)
        }
        KIND_ORDER => {
            let (epoch, rest) = postcard::take_from_bytes::<u64>(&body)
                .map_err(|e| CodecError::Malformed(e.to_string()))?;
            let order: Message =
                postcard::from_bytes(rest).map_err(|e| CodecError::Malformed(e.to_string()))?;
            Ok(Message::Order {
                epoch,
                order: Box::new(order),
            })
        }
        KIND_BLOCK => {
            if body.len() < BLOCK_HEADER_LEN {
                return Err(CodecError::Truncated(body.len() + 2));
            }
            let channel = ChannelId(body.get_u32());
            let seq = body.get_u64();
            let origin_time_us = body.get_u64();
            let flags = body.get_u8();
            let mut signature = [0u8; SIGNATURE_LEN];
            body.copy_to_slice(&mut signature);
            Ok(Message::Block(Block {
                channel,
                seq,
                origin_time_us,
                flags,
                payload: body,
                signature,
            }))
        }
        k => Err(CodecError::Kind(k)),
    }
}

/// Incremental decoder for a byte stream of frames.
pub struct FrameDecoder {
    buf: BytesMut,
    max_frame: usize,
    /// Bytes of an oversized frame still to discard.
    skipping: usize,
}

impl FrameDecoder {
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::with_capacity(64 * 1024),
            max_frame,
            skipping: 0,
        }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Space to read into directly (avoids one copy): read into the returned buffer.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// The next complete frame, if any. `Some(Err(_))` is one bad frame; call again
    /// for the following ones.
    pub fn next_frame(&mut self) -> Option<Result<Message, CodecError>> {
        if self.skipping > 0 {
            let n = self.skipping.min(self.buf.len());
            self.buf.advance(n);
            self.skipping -= n;
            if self.skipping > 0 {
                return None;
            }
        }
        if self.buf.len() < 4 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len > self.max_frame {
            self.buf.advance(4);
            self.skipping = len;
            return Some(Err(CodecError::Oversized {
                len,
                max: self.max_frame,
            }));
        }
        if self.buf.len() < 4 + len {
            self.buf.reserve(4 + len - self.buf.len());
            return None;
        }
        self.buf.advance(4);
        let body = self.buf.split_to(len).freeze();
        Some(decode_frame(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{DenyReason, PeerInfo};
    use crate::time::Timestamp;
    use proptest::prelude::*;

    fn round_trip(msg: Message) {
        let mut out = BytesMut::new();
        encode_frame(&msg, &mut out).unwrap();
        let mut d = FrameDecoder::new(MAX_FRAME_BYTES);
        d.extend(&out);
        assert_eq!(d.next_frame().unwrap().unwrap(), msg);
        assert!(d.next_frame().is_none());
    }

    #[test]
    fn messages_round_trip() {
        round_trip(Message::Login {
            channel: ChannelId(3),
            from_seq: Some(9),
            feed: crate::Feed::All,
        });
        round_trip(Message::LoginDenied {
            channel: ChannelId(3),
            reason: DenyReason::Full,
        });
        round_trip(Message::Redirect {
            channel: crate::ChannelDesc {
                id: ChannelId(1),
                name: "a".into(),
                public_key: [7; 32],
            },
            to: PeerInfo {
                id: crate::NodeId(4),
                addr: "127.0.0.1:1".into(),
                http_addr: "x".into(),
            },
        });
        round_trip(Message::ParentSet {
            channel: crate::ChannelDesc {
                id: ChannelId(1),
                name: "a".into(),
                public_key: [7; 32],
            },
            version: u64::MAX,
            placement: crate::Placement::Tier {
                tier: 2,
                activate: true,
            },
            parents: vec![crate::PeerFeed {
                peer: PeerInfo {
                    id: crate::NodeId(4),
                    addr: "127.0.0.1:1".into(),
                    http_addr: "x".into(),
                },
                feed: crate::Feed::Lazy,
            }],
        });
        let mut b = Block::new(
            ChannelId(2),
            42,
            Timestamp(77),
            true,
            Bytes::from_static(b"payload"),
        );
        b.signature = [9; 64];
        round_trip(Message::Block(b));
    }

    #[test]
    fn an_ingest_report_round_trips_is_small_and_older_tags_stay() {
        let worst = Message::IngestHealth(crate::IngestReport {
            channel: ChannelId(u32::MAX),
            publishing: true,
            bitrate_in_kbps: u32::MAX,
            keyframe_interval_ms: Some(u32::MAX),
            gaps: u32::MAX,
            longest_gap_ms: u32::MAX,
            timestamp_jumps: u32::MAX,
            stalled: true,
            stalls: u32::MAX,
        });
        round_trip(worst.clone());
        assert!(frame_len(&worst) <= 64, "{} bytes", frame_len(&worst));
        // After every older postcard variant: those encode as before (their
        // tag is their place in the enum: Probe 30), the report 31.
        assert_eq!(postcard::to_allocvec(&Message::Probe).unwrap(), vec![30]);
        assert_eq!(postcard::to_allocvec(&worst).unwrap()[0], 31);
    }

    #[test]
    fn publish_keys_round_trip_fit_a_frame_and_follow_the_ingest_report() {
        let most = Message::PublishKeys {
            channel_name: "c".repeat(64),
            digests: vec![[0xab; 32]; crate::MAX_PUBLISH_KEYS],
        };
        round_trip(most.clone());
        round_trip(Message::PublishKeys {
            channel_name: "c".into(),
            digests: Vec::new(),
        });
        assert!(frame_len(&most) < 4 * 1024, "{} bytes", frame_len(&most));
        assert_eq!(postcard::to_allocvec(&most).unwrap()[0], 32);
    }

    #[test]
    fn an_order_round_trips_with_its_epoch_and_its_frame_length_is_known() {
        let order = Message::Order {
            epoch: 300,
            order: Box::new(Message::ChannelRetired {
                channel: ChannelId(7),
            }),
        };
        round_trip(order.clone());
        let mut out = BytesMut::new();
        encode_frame(&order, &mut out).unwrap();
        assert_eq!(frame_len(&order), out.len());
        let bare = Message::ChannelRetired {
            channel: ChannelId(7),
        };
        assert_eq!(
            frame_len(&order),
            frame_len(&bare) + 2,
            "a 2-byte varint epoch"
        );
    }

    #[test]
    fn orders_do_not_nest_or_carry_blocks() {
        let inner = Message::Order {
            epoch: 1,
            order: Box::new(Message::Logoff {
                channel: ChannelId(1),
            }),
        };
        let b = Block::new(ChannelId(2), 1, Timestamp(1), false, Bytes::new());
        for order in [inner, Message::Block(b)] {
            let nested = Message::Order {
                epoch: 2,
                order: Box::new(order),
            };
            let mut out = BytesMut::new();
            assert!(matches!(
                encode_frame(&nested, &mut out),
                Err(CodecError::Encode(_))
            ));
        }
        // An order frame whose epoch or message is cut short is an error.
        for body in [&b"\x03\x02"[..], &b"\x03\x02\x80"[..], &b"\x03\x02\x05"[..]] {
            assert!(
                decode_frame(Bytes::copy_from_slice(body)).is_err(),
                "{body:?}"
            );
        }
    }

    #[test]
    fn block_head_plus_payload_equals_frame() {
        let b = Block::new(
            ChannelId(2),
            1,
            Timestamp(1),
            false,
            Bytes::from(vec![5u8; 1000]),
        );
        let mut whole = BytesMut::new();
        encode_frame(&Message::Block(b.clone()), &mut whole).unwrap();
        let mut split = BytesMut::from(&encode_block_head(&b)[..]);
        split.extend_from_slice(&b.payload);
        assert_eq!(whole, split);
    }

    #[test]
    fn oversized_frame_is_skipped_and_next_frame_decodes() {
        let mut d = FrameDecoder::new(100);
        let mut bytes = BytesMut::new();
        bytes.put_u32(1000);
        bytes.extend_from_slice(&[0xAB; 1000]);
        encode_frame(
            &Message::Logoff {
                channel: ChannelId(1),
            },
            &mut bytes,
        )
        .unwrap();
        // Feed in small pieces to exercise partial skipping.
        let mut results = Vec::new();
        for chunk in bytes.chunks(37) {
            d.extend(chunk);
            while let Some(r) = d.next_frame() {
                results.push(r);
            }
        }
        assert_eq!(results.len(), 2);
        assert!(matches!(
            results[0],
            Err(CodecError::Oversized {
                len: 1000,
                max: 100
            })
        ));
        assert_eq!(
            results[1],
            Ok(Message::Logoff {
                channel: ChannelId(1)
            })
        );
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        for body in [
            &b""[..],
            &b"\x01"[..],
            &b"\x02\x00"[..],
            &b"\x01\x09"[..],
            &b"\x01\x00\xff\xff\xff"[..],
            &b"\x01\x01abc"[..],
        ] {
            assert!(
                decode_frame(Bytes::copy_from_slice(body)).is_err(),
                "{body:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn decoder_never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut d = FrameDecoder::new(512);
            d.extend(&data);
            let mut n = 0;
            while d.next_frame().is_some() { n += 1; prop_assert!(n < 10_000); }
        }
    }
}
