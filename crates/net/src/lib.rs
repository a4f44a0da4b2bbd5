//! tiercast network driver (tokio): real sockets and clocks around the sans-IO
//! machines of `tiercast-node` and `tiercast-coordinator`.
//!
//! - [`link`] — encrypted QUIC links between nodes, admitted by the cluster key (X3).
//! - [`ingest`] — MPEG-TS ingest over UDP, TCP and HTTP POST (X1).
//! - [`http`] — viewer HTTP (`/live/<channel>.ts`, X2) and small HTTP helpers.

pub mod http;
pub mod ingest;
pub mod link;
