//! The integration tests of `aero-cli`, as one test binary (one link instead of one per file).

mod cli;
mod distribution_cli;
mod hf_cli;
mod honest_answers;
mod json_contract;
mod like_cli;
mod open_table;
mod output_messages;
mod pull_nginx;
mod pull_push_s3;
mod quant_cli;
mod reference_gguf;
mod remote_parallel;
mod remote_proxy_nginx;
mod remote_s3;
mod remote_set_nginx;
mod set_cli;
mod trust;
mod validate_rss;
