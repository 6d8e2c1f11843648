//! `aero-netem --upstream http://127.0.0.1:PORT [--delay-ms 20] [--rate-mbps 50] [--listen ADDR]`
//!
//! Starts the latency and rate-limiting proxy of `aero_test_support::netem`
//! in front of an HTTP origin, prints its base URL on standard output and
//! serves until standard input closes or the process is killed.
//! `GET /__netem/stats` answers the counters as JSON (requests and body
//! bytes per path, connections, peak requests in flight);
//! `GET /__netem/reset` zeroes them.

use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match aero_test_support::netem::config_from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("aero-netem: {e}");
            eprintln!(
                "usage: aero-netem --upstream URL [--delay-ms N] [--rate-mbps N] [--listen ADDR]"
            );
            return ExitCode::from(2);
        }
    };
    let proxy = match aero_test_support::netem::Proxy::start(config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("aero-netem: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{}", proxy.base_url());
    let _ = std::io::stdout().flush();
    // Serve until our parent closes stdin (or kills us).
    let mut sink = [0u8; 64];
    while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
    drop(proxy);
    ExitCode::SUCCESS
}
