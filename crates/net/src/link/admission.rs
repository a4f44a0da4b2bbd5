//! Node admission (X3): the cluster key shared by every node of a deployment and
//! the Hello exchange that proves, on every new link, that the other side holds it.
//!
//! Hello = `[u8 magic 'T'][u32 node_id BE][32-byte proof]`, where
//! `proof = HMAC-SHA256(cluster_key, "tiercast-admit-v1" || role || node_id || ekm)`,
//! `role` is `b'c'` for the dialer and `b's'` for the listener, and `ekm` is 32 bytes
//! exported from this very TLS session (`"tiercast admission"`, empty context). The
//! exporter binds the proof to the session, so a proof seen on one link is useless
//! on any other; the role byte stops a proof being reflected back at its sender.
//!
//! Order on the wire: the dialer opens the one bidirectional stream and sends its
//! Hello first; the listener checks it before it answers with its own, so a node
//! without the key learns nothing about the cluster. Both sides give up after
//! [`HELLO_TIMEOUT`].

use super::LinkError;
use quinn::{Connection, RecvStream, SendStream};
use ring::hmac;
use std::fmt;
use std::time::Duration;
use thiserror::Error;
use tiercast_proto::NodeId;

pub const HELLO_MAGIC: u8 = b'T';
pub const PROOF_LEN: usize = 32;
pub const HELLO_LEN: usize = 1 + 4 + PROOF_LEN;
/// A peer that has not sent its Hello by then is closed.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
const PROOF_DOMAIN: &[u8] = b"tiercast-admit-v1";
const EXPORTER_LABEL: &[u8] = b"tiercast admission";
/// Seed of the well-known development key; anyone can derive it.
const DEV_KEY_SEED: &[u8] = b"tiercast development cluster key: public, never use in production";

/// The secret shared by every node of one cluster; links are admitted only between
/// holders. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey(pub [u8; 32]);

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_dev_default() {
            f.write_str("ClusterKey(dev default)")
        } else {
            f.write_str("ClusterKey(<redacted>)")
        }
    }
}

impl ClusterKey {
    /// Parses 64 hex digits (surrounding whitespace is ignored).
    pub fn from_hex(s: &str) -> Result<Self, LinkError> {
        let digits = s.trim().as_bytes();
        if digits.len() != 64 {
            return Err(LinkError::InvalidClusterKey(format!(
                "expected 64 hex digits, got {} characters",
                digits.len()
            )));
        }
        let mut key = [0u8; 32];
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            match (hex_value(pair[0]), hex_value(pair[1])) {
                (Some(hi), Some(lo)) => key[i] = (hi << 4) | lo,
                _ => {
                    return Err(LinkError::InvalidClusterKey(format!(
                        "not a hex digit near position {}",
                        2 * i
                    )))
                }
            }
        }
        Ok(ClusterKey(key))
    }

    /// A fixed, publicly known key for single-machine use and tests. It admits
    /// anyone who has read this source: callers warn when it is in use.
    pub fn dev_default() -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, DEV_KEY_SEED);
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        ClusterKey(key)
    }

    pub fn is_dev_default(&self) -> bool {
        *self == Self::dev_default()
    }

    /// A fresh random key (for `keygen`-style commands).
    pub fn random() -> Self {
        ClusterKey(rand::random())
    }

    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(HEX[usize::from(b >> 4)] as char);
            s.push(HEX[usize::from(b & 0x0f)] as char);
        }
        s
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Which end of the link a Hello comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

impl Role {
    fn byte(self) -> u8 {
        match self {
            Role::Client => b'c',
            Role::Server => b's',
        }
    }
}

/// Why a link was not admitted.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum AdmissionError {
    #[error("not admitted: cluster key mismatch")]
    KeyMismatch,
    #[error("not admitted: peer claims our own node id {0}")]
    OwnNodeId(NodeId),
    #[error("not admitted: bad hello (magic byte {0:#04x})")]
    BadMagic(u8),
    #[error("not admitted: no hello within {} s", HELLO_TIMEOUT.as_secs())]
    Timeout,
    /// The connection failed during admission (reason as the transport gave it,
    /// or as the peer gave it when it closed the connection).
    #[error("{0}")]
    Connection(String),
}

impl AdmissionError {
    /// True when the peer was refused (as opposed to the link failing).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, AdmissionError::Connection(_))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    pub node_id: NodeId,
    pub proof: [u8; PROOF_LEN],
}

impl Hello {
    pub fn new(key: &ClusterKey, role: Role, node_id: NodeId, ekm: &[u8; 32]) -> Self {
        let tag = hmac::sign(&hmac_key(key), &proof_input(role, node_id, ekm));
        let mut proof = [0u8; PROOF_LEN];
        proof.copy_from_slice(tag.as_ref());
        Hello { node_id, proof }
    }

    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut out = [0u8; HELLO_LEN];
        out[0] = HELLO_MAGIC;
        out[1..5].copy_from_slice(&self.node_id.0.to_be_bytes());
        out[5..].copy_from_slice(&self.proof);
        out
    }

    pub fn decode(bytes: &[u8; HELLO_LEN]) -> Result<Self, AdmissionError> {
        if bytes[0] != HELLO_MAGIC {
            return Err(AdmissionError::BadMagic(bytes[0]));
        }
        let node_id = NodeId(u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]));
        let mut proof = [0u8; PROOF_LEN];
        proof.copy_from_slice(&bytes[5..]);
        Ok(Hello { node_id, proof })
    }

    /// Checks, in constant time, that the Hello was made with `key` by the `role`
    /// end of the session that exported `ekm`, and that it is not our own id.
    pub fn verify(
        &self,
        key: &ClusterKey,
        role: Role,
        ekm: &[u8; 32],
        ours: NodeId,
    ) -> Result<(), AdmissionError> {
        hmac::verify(
            &hmac_key(key),
            &proof_input(role, self.node_id, ekm),
            &self.proof,
        )
        .map_err(|_| AdmissionError::KeyMismatch)?;
        if self.node_id == ours {
            return Err(AdmissionError::OwnNodeId(ours));
        }
        Ok(())
    }
}

fn hmac_key(key: &ClusterKey) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, &key.0)
}

fn proof_input(
    role: Role,
    node_id: NodeId,
    ekm: &[u8; 32],
) -> [u8; PROOF_DOMAIN.len() + 1 + 4 + 32] {
    let mut input = [0u8; PROOF_DOMAIN.len() + 1 + 4 + 32];
    let (domain, rest) = input.split_at_mut(PROOF_DOMAIN.len());
    domain.copy_from_slice(PROOF_DOMAIN);
    rest[0] = role.byte();
    rest[1..5].copy_from_slice(&node_id.0.to_be_bytes());
    rest[5..].copy_from_slice(ekm);
    input
}

/// A link whose peer proved it holds the cluster key; `send`/`recv` are the one
/// stream that now carries frames.
pub(crate) struct Admitted {
    pub peer: NodeId,
    pub send: SendStream,
    pub recv: RecvStream,
}

/// Dialer side: open the stream, send our Hello, check the listener's.
pub(crate) async fn admit_outgoing(
    conn: &Connection,
    key: &ClusterKey,
    ours: NodeId,
) -> Result<Admitted, AdmissionError> {
    let ekm = exported_keying_material(conn)?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| lost(conn, e))?;
    send.write_all(&Hello::new(key, Role::Client, ours, &ekm).encode())
        .await
        .map_err(|e| lost(conn, e))?;
    let hello = tokio::time::timeout(HELLO_TIMEOUT, read_hello(conn, &mut recv))
        .await
        .map_err(|_| AdmissionError::Timeout)??;
    hello.verify(key, Role::Server, &ekm, ours)?;
    Ok(Admitted {
        peer: hello.node_id,
        send,
        recv,
    })
}

/// Listener side: accept the stream, check the dialer's Hello, then answer.
pub(crate) async fn admit_incoming(
    conn: &Connection,
    key: &ClusterKey,
    ours: NodeId,
) -> Result<Admitted, AdmissionError> {
    let ekm = exported_keying_material(conn)?;
    let (mut send, recv, hello) = tokio::time::timeout(HELLO_TIMEOUT, async {
        let (send, mut recv) = conn.accept_bi().await.map_err(|e| lost(conn, e))?;
        let hello = read_hello(conn, &mut recv).await?;
        Ok::<_, AdmissionError>((send, recv, hello))
    })
    .await
    .map_err(|_| AdmissionError::Timeout)??;
    hello.verify(key, Role::Client, &ekm, ours)?;
    send.write_all(&Hello::new(key, Role::Server, ours, &ekm).encode())
        .await
        .map_err(|e| lost(conn, e))?;
    Ok(Admitted {
        peer: hello.node_id,
        send,
        recv,
    })
}

async fn read_hello(conn: &Connection, recv: &mut RecvStream) -> Result<Hello, AdmissionError> {
    let mut buf = [0u8; HELLO_LEN];
    recv.read_exact(&mut buf).await.map_err(|e| lost(conn, e))?;
    Hello::decode(&buf)
}

fn exported_keying_material(conn: &Connection) -> Result<[u8; 32], AdmissionError> {
    let mut ekm = [0u8; 32];
    conn.export_keying_material(&mut ekm, EXPORTER_LABEL, b"")
        .map_err(|_| AdmissionError::Connection("cannot export TLS keying material".into()))?;
    Ok(ekm)
}

/// The best description of a failure during admission: the peer's close reason
/// when it closed the connection (e.g. "not admitted: cluster key mismatch").
fn lost(conn: &Connection, e: impl fmt::Display) -> AdmissionError {
    match conn.close_reason() {
        Some(reason) => AdmissionError::Connection(super::connection::describe_close(&reason)),
        None => AdmissionError::Connection(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let k = ClusterKey::random();
        assert_eq!(ClusterKey::from_hex(&k.to_hex()).unwrap(), k);
        assert_eq!(
            ClusterKey::from_hex(&format!("  {}\n", k.to_hex().to_uppercase())).unwrap(),
            k
        );
        assert!(ClusterKey::from_hex("abc").is_err());
        assert!(ClusterKey::from_hex(&"g".repeat(64)).is_err());
        // Multi-byte characters must not panic the parser.
        assert!(ClusterKey::from_hex(&"é".repeat(32)).is_err());
        assert!(ClusterKey::dev_default().is_dev_default());
        assert_eq!(format!("{k:?}"), "ClusterKey(<redacted>)");
    }

    #[test]
    fn proofs_bind_key_role_node_and_session() {
        let key = ClusterKey::random();
        let ekm = [7u8; 32];
        let hello = Hello::new(&key, Role::Client, NodeId(5), &ekm);
        let decoded = Hello::decode(&hello.encode()).unwrap();
        assert_eq!(decoded, hello);
        assert_eq!(decoded.verify(&key, Role::Client, &ekm, NodeId(1)), Ok(()));
        let mismatch = Err(AdmissionError::KeyMismatch);
        assert_eq!(
            decoded.verify(&ClusterKey::random(), Role::Client, &ekm, NodeId(1)),
            mismatch
        );
        assert_eq!(
            decoded.verify(&key, Role::Server, &ekm, NodeId(1)),
            mismatch
        );
        assert_eq!(
            decoded.verify(&key, Role::Client, &[8u8; 32], NodeId(1)),
            mismatch
        );
        let mut forged = decoded;
        forged.node_id = NodeId(6);
        assert_eq!(forged.verify(&key, Role::Client, &ekm, NodeId(1)), mismatch);
        assert_eq!(
            decoded.verify(&key, Role::Client, &ekm, NodeId(5)),
            Err(AdmissionError::OwnNodeId(NodeId(5)))
        );
        let mut bad = hello.encode();
        bad[0] = b'X';
        assert_eq!(Hello::decode(&bad), Err(AdmissionError::BadMagic(b'X')));
    }
}
