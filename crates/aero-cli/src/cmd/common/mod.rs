//! What several commands share: flag groups (`args`, `like`), `--filter`
//! (`filter`), opening and writing helpers (`source`, `convert`, `writers`), and the
//! presentation of tensors, key/values and writes (`tables`, `written`).
//! Each helper is defined here once.

pub(crate) mod args;
pub(crate) mod convert;
pub(crate) mod filter;
pub(crate) mod like;
pub(crate) mod source;
pub(crate) mod tables;
pub(crate) mod writers;
pub(crate) mod written;
