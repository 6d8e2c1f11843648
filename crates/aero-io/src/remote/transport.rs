//! What a remote protocol has to provide: one range request at a time.
//!
//! A [`Transport`] turns "bytes `start..end` of this file, pinned to this
//! ETag" into a [`Reply`] (which bytes the server says it sends, its
//! validators, and a body to read) or a typed [`FetchError`]. Everything
//! else — the in-memory head, splitting, retries and backoff, resuming a cut
//! body, `Content-Range` and length checks, a `200` to a range request,
//! request statistics and the verified disk cache — is done once, for every
//! transport, by [`super::RemoteSource`].

use std::io::{self, Read};
use std::ops::Range;

use super::RemoteOptions;

/// One remote protocol (HTTP, object storage…) behind
/// [`super::RemoteSource`].
///
/// Failures are classified by the transport from what it knows by type
/// (status codes, error variants), never from message text: see
/// [`FetchError`].
pub trait Transport: Send + Sync {
    /// Prepares to read `url` (one of the schemes this transport is
    /// registered for in `remote/mod.rs`). Sends no request.
    fn connect(url: &str, opts: &RemoteOptions) -> io::Result<Self>
    where
        Self: Sized;

    /// Asks for the bytes `range` (non-empty, end exclusive). With `etag`,
    /// the server must refuse to answer from another version of the file
    /// (`If-Match`).
    fn get(&self, range: Range<u64>, etag: Option<&str>) -> Result<Reply<'_>, FetchError>;

    /// The size and validators of the file, without its bytes (one
    /// request). Asked only when the first range request at open is refused
    /// without a size, since an empty file has no byte range to give. `None`
    /// (the default) when this transport has no such request: the refusal
    /// stands.
    fn stat(&self) -> Option<Result<Meta, FetchError>> {
        None
    }

    /// Whether every request is already retried inside the transport (as
    /// `object_store` does). A failure that made no progress then gets one
    /// more round from the core, not `retries` more: an unreachable
    /// endpoint fails in seconds rather than after `retries²` attempts.
    fn retries_itself(&self) -> bool {
        false
    }
}

/// A server's answer to a range request.
pub struct Reply<'a> {
    /// Which bytes the body holds.
    pub served: Served,
    /// The file's ETag, if the server sent one.
    pub etag: Option<String>,
    /// The file's last modification time, if known (any stable text).
    pub modified: Option<String>,
    /// The body; reading it may fail or end early (a cut connection).
    pub body: Box<dyn Read + 'a>,
}

/// Which bytes a [`Reply`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// Bytes `start..end` of a file of `total` bytes (`None`: not said), as
    /// an HTTP `206` with its `Content-Range`.
    Range {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
        /// File size.
        total: Option<u64>,
    },
    /// The whole file from byte 0 (an HTTP `200` to a range request: the
    /// server ignores ranges); `total` from `Content-Length`, if sent.
    Whole {
        /// File size.
        total: Option<u64>,
    },
}

/// Size and validators of a remote file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Size in bytes.
    pub size: u64,
    /// ETag, if any.
    pub etag: Option<String>,
    /// Last modification time, if known.
    pub modified: Option<String>,
}

/// Why a request failed, as the transport classified it.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Worth another attempt: a 5xx or 429 status, a timeout, a connection
    /// error.
    #[error("{0}")]
    Retry(String),
    /// The server refused the range (HTTP 416, or an object store's final
    /// status for it). `meta` carries the file's size and validators when
    /// the refusal gave them; an empty file opens this way.
    #[error("{error}")]
    Unsatisfiable {
        /// What the refusal said about the file, if anything.
        meta: Option<Meta>,
        /// The error to report if the file is not empty.
        error: io::Error,
    },
    /// The file changed since it was opened (HTTP 412 to `If-Match`).
    #[error("remote file changed since it was opened ({0})")]
    Changed(String),
    /// Final: anything else (4xx, bad responses, refused configuration).
    #[error(transparent)]
    Fatal(io::Error),
}

impl FetchError {
    /// A final error of kind `InvalidData` with this message.
    pub fn fatal(msg: impl Into<String>) -> FetchError {
        FetchError::Fatal(io::Error::new(io::ErrorKind::InvalidData, msg.into()))
    }
}
