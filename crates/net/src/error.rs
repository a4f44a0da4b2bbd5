//! Errors of starting and running a driver (one enum for the operation).

use crate::link::LinkError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DriverError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] crate::coordinator_store::StoreError),
    #[error("the driver has stopped")]
    Stopped,
}
