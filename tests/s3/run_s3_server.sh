#!/usr/bin/env bash
# Runs an S3-compatible server that checks SigV4 signatures (`s3s-fs`) on
# 127.0.0.1 for the object-storage tests (crates/aero-cli/tests/it/remote_s3.rs).
#
#   run_s3_server.sh start   start it (installing s3s-fs if missing); prints the endpoint URL
#   run_s3_server.sh url     prints the endpoint URL of the running server
#   run_s3_server.sh env     prints `export …` lines for the test (eval them)
#   run_s3_server.sh stop    stops the server started by `start` and deletes its data
#
# Listens on 127.0.0.1 only, on a random free port. State (pid, port, log,
# and the data directory the server stores buckets in) lives in
# $AERO_S3_PREFIX (default: a fresh `mktemp -d` directory, remembered in
# ${TMPDIR:-/tmp}/aero-s3.prefix so that `url`, `env` and `stop` find it).
# The access key and secret are fixed test values (below), exported by `env`
# as AERO_S3_ACCESS_KEY / AERO_S3_SECRET_KEY together with AERO_S3_ENDPOINT.
#
# If `s3s-fs` is not on PATH (or in ~/.cargo/bin) it is installed with
#   cargo install s3s-fs@0.14.1 --locked --features binary
# (about 3 minutes on 2 cores).
#
# CI:
#   eval "$(tests/s3/run_s3_server.sh start >/dev/null && tests/s3/run_s3_server.sh env)"
#   cargo test -p aero-cli --features s3 --test it -- --nocapture remote_s3::
#   tests/s3/run_s3_server.sh stop
set -euo pipefail

ACCESS_KEY="AEROTESTACCESSKEY01"
SECRET_KEY="aero-test-secret-key-not-for-production"
S3S_VERSION="0.14.1"

die() { echo "run_s3_server.sh: $*" >&2; exit 1; }

pointer="${TMPDIR:-/tmp}/aero-s3.prefix"

prefix_dir() {
    if [ -n "${AERO_S3_PREFIX:-}" ]; then echo "$AERO_S3_PREFIX"; return; fi
    if [ -s "$pointer" ]; then cat "$pointer"; return; fi
    return 1
}

find_s3s() {
    if command -v s3s-fs >/dev/null 2>&1; then command -v s3s-fs; return; fi
    local p="${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs"
    if [ -x "$p" ]; then echo "$p"; return; fi
    return 1
}

install_s3s() {
    command -v cargo >/dev/null 2>&1 || die "s3s-fs is missing and cargo is not available"
    echo "installing s3s-fs $S3S_VERSION (cargo install)..." >&2
    nice -n 10 cargo install "s3s-fs@$S3S_VERSION" --locked --features binary >&2 ||
        die "cargo install s3s-fs@$S3S_VERSION failed"
}

is_running() {
    local prefix="$1"
    [ -s "$prefix/s3s.pid" ] && kill -0 "$(cat "$prefix/s3s.pid")" 2>/dev/null
}

free_port() {
    # Ask the kernel for a free port (bind to 0), falling back to a random one.
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
    else
        echo $(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    fi
}

stop() {
    local prefix
    prefix="$(prefix_dir)" || { echo "run_s3_server.sh: not running (no state)" >&2; return 0; }
    if [ -s "$prefix/s3s.pid" ]; then
        local pid
        pid="$(cat "$prefix/s3s.pid")"
        case "$pid" in ''|*[!0-9]*) die "bad pid file $prefix/s3s.pid" ;; esac
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            if kill -0 "$pid" 2>/dev/null; then
                echo "run_s3_server.sh: s3s-fs $pid did not stop, sending KILL" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        echo "stopped s3s-fs ($pid)" >&2
    fi
    # Delete only what this script created: the whole directory if it came
    # from mktemp, else just the server's files and data.
    if [ "$(cat "$prefix/.aero-s3" 2>/dev/null)" = "mktemp" ]; then
        rm -rf "$prefix"
    elif [ -f "$prefix/.aero-s3" ]; then
        rm -rf "$prefix/data" "$prefix/s3s.pid" "$prefix/port" "$prefix/s3s.log" "$prefix/.aero-s3"
    fi
    if [ -s "$pointer" ] && [ "$(cat "$pointer")" = "$prefix" ]; then
        rm -f "$pointer"
    fi
}

start() {
    local s3s prefix
    s3s="$(find_s3s)" || { install_s3s; s3s="$(find_s3s)" || die "s3s-fs not found after install"; }
    if prefix="$(prefix_dir)" && [ -f "$prefix/.aero-s3" ]; then
        echo "run_s3_server.sh: stopping the previous instance" >&2
        stop
    fi
    if [ -n "${AERO_S3_PREFIX:-}" ]; then
        prefix="$AERO_S3_PREFIX"
        mkdir -p "$prefix"
        echo user > "$prefix/.aero-s3"
    else
        prefix="$(mktemp -d "${TMPDIR:-/tmp}/aero-s3.XXXXXX")"
        echo mktemp > "$prefix/.aero-s3"
    fi
    rm -rf "$prefix/data"
    mkdir -p "$prefix/data"
    echo "$prefix" > "$pointer"

    local port attempt
    for attempt in $(seq 1 10); do
        port="$(free_port)"
        : > "$prefix/s3s.log"
        # setsid: the server outlives this script and ignores its terminal.
        setsid "$s3s" --host 127.0.0.1 --port "$port" \
            --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" \
            "$prefix/data" >>"$prefix/s3s.log" 2>&1 < /dev/null &
        echo $! > "$prefix/s3s.pid"
        for _ in $(seq 1 100); do
            if ! is_running "$prefix"; then break; fi
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                echo "$port" > "$prefix/port"
                echo "s3s-fs on 127.0.0.1:$port (data $prefix/data, log $prefix/s3s.log)" >&2
                echo "http://127.0.0.1:$port"
                return 0
            fi
            sleep 0.1
        done
        if is_running "$prefix"; then kill -TERM "$(cat "$prefix/s3s.pid")" 2>/dev/null || true; fi
        echo "run_s3_server.sh: attempt $attempt on port $port failed: $(tail -n 3 "$prefix/s3s.log")" >&2
    done
    die "could not start s3s-fs (see $prefix/s3s.log)"
}

url() {
    local prefix
    prefix="$(prefix_dir)" || die "not running (no state; run start first)"
    is_running "$prefix" || die "not running (pid file $prefix/s3s.pid)"
    echo "http://127.0.0.1:$(cat "$prefix/port")"
}

env_lines() {
    local u
    u="$(url)"
    echo "export AERO_S3_ENDPOINT=$u"
    echo "export AERO_S3_ACCESS_KEY=$ACCESS_KEY"
    echo "export AERO_S3_SECRET_KEY=$SECRET_KEY"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) url ;;
    env) env_lines ;;
    *) die "usage: run_s3_server.sh start|url|env|stop" ;;
esac
