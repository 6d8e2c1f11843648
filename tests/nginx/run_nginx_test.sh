#!/usr/bin/env bash
# Starts Debian's nginx (package nginx-light) on 127.0.0.1 with its own prefix
# and configuration, serving one directory, for the remote-reading tests.
#
#   run_nginx_test.sh [start] DIR   start serving DIR; prints the base URL
#   run_nginx_test.sh log           prints the access log path
#   run_nginx_test.sh stop          stops the server started by `start`
#
# State lives in $AERO_NGINX_PREFIX (default ${TMPDIR:-/tmp}/aero-nginx).
# The access log has one line per request:
#   METHOD|URI|RANGE|STATUS|BODY_BYTES|IF_MATCH|IF_RANGE   ("-" = header absent)
# If `nginx` is missing it is installed with apt-get (root only).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
prefix="${AERO_NGINX_PREFIX:-${TMPDIR:-/tmp}/aero-nginx}"

die() { echo "run_nginx_test.sh: $*" >&2; exit 1; }

find_nginx() {
    if command -v nginx >/dev/null 2>&1; then command -v nginx; return; fi
    for p in /usr/sbin/nginx /usr/local/sbin/nginx /usr/local/nginx/sbin/nginx; do
        if [ -x "$p" ]; then echo "$p"; return; fi
    done
    return 1
}

install_nginx() {
    [ "$(id -u)" = 0 ] || die "nginx is not installed and we are not root: apt-get install nginx-light"
    echo "installing nginx-light..." >&2
    # Keep the package's maintainer scripts from starting the system nginx
    # (port 80): a policy-rc.d that forbids service starts, only if none exists.
    local policy=/usr/sbin/policy-rc.d ours=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod 755 "$policy"
        ours=1
    fi
    local rc=0
    { DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-light >&2; } || rc=$?
    if [ "$ours" = 1 ]; then rm -f "$policy"; fi
    [ "$rc" = 0 ] || die "apt-get install nginx-light failed ($rc)"
}

is_running() {
    [ -s "$prefix/nginx.pid" ] && kill -0 "$(cat "$prefix/nginx.pid")" 2>/dev/null
}

stop() {
    if [ ! -s "$prefix/nginx.pid" ]; then
        echo "run_nginx_test.sh: not running (no $prefix/nginx.pid)" >&2
        return 0
    fi
    local pid
    pid="$(cat "$prefix/nginx.pid")"
    case "$pid" in ''|*[!0-9]*) die "bad pid file $prefix/nginx.pid" ;; esac
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "run_nginx_test.sh: nginx $pid did not stop, sending KILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$prefix/nginx.pid"
    echo "stopped nginx ($pid)" >&2
}

start() {
    local dir="${1:-}"
    [ -n "$dir" ] || die "usage: run_nginx_test.sh [start] DIR"
    [ -d "$dir" ] || die "$dir is not a directory"
    local root
    root="$(cd "$dir" && pwd -P)"
    local nginx
    nginx="$(find_nginx)" || { install_nginx; nginx="$(find_nginx)" || die "nginx not found after install"; }

    if is_running; then
        echo "run_nginx_test.sh: stopping the previous instance" >&2
        stop
    fi
    mkdir -p "$prefix/logs" "$prefix/tmp"
    : > "$prefix/logs/access.log"
    : > "$prefix/logs/error.log"

    local user_line="" temp_paths="" v
    if [ "$(id -u)" = 0 ]; then
        # Workers run as the invoking user so that they can read DIR even when
        # it is private (tempfile-style 0700 directories).
        user_line="user $(id -un) $(id -gn);"
    fi
    v="$("$nginx" -V 2>&1 || true)"
    for m in proxy fastcgi uwsgi scgi; do
        case "$v" in
            *"--without-http_${m}_module"*) ;;
            *) temp_paths+="    ${m}_temp_path $prefix/tmp/$m;"$'\n' ;;
        esac
    done

    local port attempt
    for attempt in $(seq 1 20); do
        port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
        sed -e "s|@PREFIX@|$prefix|g" -e "s|@ROOT@|$root|g" -e "s|@PORT@|$port|g" \
            -e "s|@USER_LINE@|$user_line|" "$here/nginx.conf.template" |
            awk -v t="$temp_paths" '{ if ($0 == "@TEMP_PATHS@") printf "%s", t; else print }' \
            > "$prefix/nginx.conf"
        if "$nginx" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" 2>>"$prefix/logs/start.err"; then
            # The master has bound the socket before the starting process exits.
            for _ in $(seq 1 50); do
                if is_running && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                    echo "$port" > "$prefix/port"
                    echo "nginx serving $root on 127.0.0.1:$port (prefix $prefix, log $prefix/logs/access.log)" >&2
                    echo "http://127.0.0.1:$port"
                    return 0
                fi
                sleep 0.1
            done
            stop
            die "nginx started but does not answer on port $port"
        fi
        if grep -q "Address already in use" "$prefix/logs/error.log" "$prefix/logs/start.err" 2>/dev/null; then
            : > "$prefix/logs/error.log"
            : > "$prefix/logs/start.err"
            continue
        fi
        cat "$prefix/logs/start.err" "$prefix/logs/error.log" >&2 || true
        die "nginx failed to start (config $prefix/nginx.conf)"
    done
    die "no free port found after $attempt attempts"
}

case "${1:-}" in
    stop) stop ;;
    log) echo "$prefix/logs/access.log" ;;
    url) [ -s "$prefix/port" ] && is_running || die "not running"; echo "http://127.0.0.1:$(cat "$prefix/port")" ;;
    start) shift; start "${1:-}" ;;
    ""|-h|--help) sed -n "2,11p" "$0"; exit 2 ;;
    *) start "$1" ;;
esac
