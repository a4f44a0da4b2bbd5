//! The subcommands of `tiercast`, one file each.

pub mod bench;
pub mod bench_heartbeats;
pub mod cluster;
pub mod common;
pub mod coordinator;
pub mod demo;
pub mod keygen;
pub mod origin;
pub mod peer;
pub mod policy;
pub mod publish_keys;
pub mod relay;
pub mod sim;
pub mod sim_locality;
pub mod viewer;
