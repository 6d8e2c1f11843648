//! The integration tests of `aero-io`, as one test binary (one link instead of one per file).

mod common;
#[cfg(feature = "http")]
mod support {
    pub(crate) mod http_server;
}
mod attached;
mod errors;
mod golden;
mod remote;
mod remote_engine;
mod remote_nginx;
mod robustness;
mod trust;
mod windows;
mod writer;
