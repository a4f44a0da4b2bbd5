//! tiercast network driver (tokio): real sockets and clocks around the sans-IO
//! machines of `tiercast-node` and `tiercast-coordinator`.
//!
//! - [`link`] — encrypted QUIC links between nodes, admitted by the cluster key (X3).
//! - [`ingest`] — MPEG-TS ingest over UDP, TCP and HTTP POST (X1).
//! - [`http`] — viewer HTTP (`/live/<channel>.ts`, X2) and the coordinator's HTTP API (V2).
//! - [`endpoint`] — parsing coordinator URLs and listen addresses.
//! - [`clock`] — the driver's monotonic clock as a `Timestamp`.
//! - [`metrics`] — Prometheus `/metrics` of every role, written from read-only views (X4).
//! - [`node_driver`] — runs a `Node` machine: links, viewer HTTP, timers, commands.
//! - [`coordinator_driver`] — runs the `Coordinator` machine: links, HTTP API, timers.
//! - [`coordinator_store`] — the coordinator's embedded store (redb): policies, node history.
//! - [`etcd`] — several coordinator processes: leader election and fencing on etcd (X7, D7).
//! - [`origin`] — ingest → cut → sign → the origin node (X1, X3).
//! - [`origin_backup`] — a backup origin: standing by, promoted, handed back (D7, issue 12).
//! - [`origin_health`] — the origin's ingest health reported to the coordinator (X1, issue 17).
//! - [`origin_state`] — the origin's key and next seq, kept across restarts (X1, X3, D7).

pub mod clock;
pub mod coordinator_driver;
pub mod coordinator_store;
pub mod endpoint;
pub mod error;
pub mod etcd;
pub mod http;
pub mod ingest;
pub mod link;
pub mod metrics;
pub mod node_driver;
pub mod origin;
pub mod origin_backup;
pub mod origin_health;
pub mod origin_state;
