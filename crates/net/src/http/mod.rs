//! Hand-rolled HTTP/1.1 servers: the relay's viewer endpoint and the
//! coordinator's API. One request per connection, `Connection: close`, bodies
//! written straight from `bytes::Bytes` with vectored writes.
//!
//! Features: X2 (viewer HTTP, first half), V2 (redirects), X3 (bounded
//! resources and clear errors).
//!
//! - [`request`] — read one request head (16 KiB, 10 s), split path and query.
//! - [`response`] — small complete responses, the streamed-body head, graceful close.
//! - [`viewer`] — `GET /live/<channel>.ts` on a relay: join, backlog, live blocks.
//!
//! A peer's reorder stage (D4) is not here: it is `tiercast_node::Playout`, the
//! sans-IO core's, which the simulator runs too; [`LiveBlock`] is what this
//! driver feeds it (`node_driver::local`).
//! - [`coordinator_api`] — `GET /watch/<channel>` (302, 451), `/status`, `/health`,
//!   `/leader`, `POST /policy`.
//! - [`leader_view`] — `GET /leader`: who leads, from the election's view (D7, X7).
//! - [`operator_auth`] — operator requests signed with the cluster key (HMAC, time-bound).
//! - [`operator_client`] — the operator's side: a signed `POST` to the coordinator.
//! - [`hls_routes`] — `/hls/<channel>/index.m3u8`, `<msn>.ts`, `<msn>.<part>.ts`:
//!   HLS and LL-HLS (blocking reload) with CORS; `hls_hub` — one segmenter and
//!   feeder per channel asked for over HLS, bounded parked requests (X2).
//! - [`viewer_access`] — may this request see this channel (the token hook; all allowed).
//! - `accept` — the shared accept loop with its connection cap.
//! - `viewer_stream` — the per-viewer pump: batching, vectored writes, lag resync.
//! - `viewer_feed` — the audio-only and delayed feeds (C3): a viewer's blocks shaped
//!   (audio filter, delay line) between the live channel and its socket.

mod accept;
pub mod coordinator_api;
mod hls_hub;
pub mod hls_routes;
pub mod leader_view;
pub mod operator_auth;
pub mod operator_client;
pub mod request;
pub mod response;
pub mod viewer;
pub mod viewer_access;
mod viewer_feed;
mod viewer_stream;

#[cfg(test)]
mod tests;

pub use coordinator_api::{serve_api, ApiRequest, ApiStats, WatchAnswer};
pub use hls_hub::HlsLimits;
pub use leader_view::LeaderView;
pub use request::{read_request_head, Method, RequestError, RequestHead};
pub use response::Response;
pub use viewer::{
    serve_viewers, LiveBlock, ViewerLimits, ViewerRefusal, ViewerRequest, ViewerServerStats,
    ViewerStream, DELAY_BLOCKS_PER_S,
};
