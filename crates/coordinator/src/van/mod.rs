//! The relays' manager per channel (seed 001's Virtual Active Network): which
//! relays are active, in which tier and phase, with which parents (V1–V11).
//!
//! - [`manager`] — one channel's VAN: active relays, phases, parents (V1, V8).
//! - [`activation`] — start-up path and parent choice (V2), multiple parents (V9).
//! - [`distribute`] — DISTRIBUTE (V4), with farms (V6) and prediction (V7).
//! - [`consolidate`] — CONSOLIDATE (V5).
//! - [`farm`] — bursts: arrival-rate sizing and server farms, round-robin (V6).
//! - [`predict`] — login/logoff rate prediction (SysLinRate, Loffrate_s), tier room (V7).
//! - [`regroup`] — MIN_s and the eligible group of l existing relays (V7).
//! - [`downgrade`] — LinkDowngrade: another parent, a sibling, or a new parent (V10).
//! - [`idle`] — relays that feed nobody for a while are made idle (V5).
//! - [`adopt`] — a relay back from a partition (or met by a restarted coordinator)
//!   is made active again with the links it reports, not rebuilt (D7, D8, V10, X5).
//! - [`watch`] — choosing the relay a viewer is redirected to (V2).
//! - [`watch_feed`] — an HTTP viewer's feed: the delay and the audio-only fall-back (C3).
//! - [`viewer_moves`] — where each protocol viewer watches; a lost relay's viewers
//!   moved (V2, V10).
//! - [`verbs`] — the VAN manager behind the routed verbs the coordinator hands
//!   every manager (C1, `service_manager/verbs.rs`).

pub mod activation;
pub mod adopt;
pub mod consolidate;
pub mod distribute;
pub mod downgrade;
pub mod farm;
pub mod idle;
pub mod manager;
pub mod predict;
pub mod regroup;
pub mod verbs;
pub mod viewer_moves;
pub mod watch;
pub mod watch_feed;
