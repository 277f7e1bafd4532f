#!/usr/bin/env bash
# HTTPS throughput of Velocity next to nginx, on this machine, in one run.
#
# What it measures: requests per second for one small static answer (a 1 KiB text/plain body, the same
# bytes from both servers) over TLS 1.3 on 127.0.0.1, for
#   - HTTPS HTTP/1.1: wrk -t2 -c50 -d10s            (50 keep-alive connections, one request in flight each)
#   - HTTPS HTTP/2:   h2load -n 200000 -c 50 -m 10 -t 2  (50 connections, 10 concurrent streams each, ALPN h2)
# Both servers get the same ECDSA P-256 certificate and key (made here with openssl), TLS 1.3 with X25519
# (Debian's OpenSSL 3.0 clients offer no ML-KEM group), keep-alive without a request limit, no access log,
# two workers (nginx `worker_processes 2`, Velocity one event loop per core). Each test runs ROUNDS times per
# server (default 3), alternating which server goes first, and the table shows the MEDIAN.
#
# How to read it: the last column is Velocity/nginx (1.00 = as fast as nginx, 0.50 = half nginx's rate).
# The client runs on the same CPUs as the server, so absolute numbers depend on the machine and on how much
# CPU the client itself needs; compare the ratio, and the "server CPU per request" table, which counts only
# the server processes' CPU time (utime+stime from /proc) and so does not depend on how the client fares.
# Run it on an otherwise idle machine (the script warns when the load average is above 0.5); the rounds
# printed under the table show how noisy a run was. docs/benchmarks.md holds a recorded run and its reading.
#
# Usage: benchmarks/https-vs-nginx.sh          (installs nginx, wrk, nghttp2-client, openssl if missing on
#                                                Debian, then builds Velocity in release mode)
# Environment: ROUNDS=3  KEEP=1 (keep the temp directory with configs and raw tool output)
#              VELOCITY_BIN=path (skip the build and use this binary)
#              WRK_DURATION=10s  H2_REQUESTS=200000 (only to try the script quickly; keep them for real runs)
# Everything listens on 127.0.0.1 only; both servers are stopped on exit.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"   # what this shares with proxy-vs-nginx.sh

# --- one measurement ----------------------------------------------------------------------------------------
# measure TEST SERVER ROUND: runs the load tool once, records req/s and server CPU per request.
measure() {
    local before after
    local -a pids
    read -r -a pids <<<"$(server_pids "$2")"
    before=$(cpu_ticks "${pids[@]}")
    run_load "$@"
    after=$(cpu_ticks "${pids[@]}")
    record_load "$@" "$((after - before))"
}

# --- main ---------------------------------------------------------------------------------------------------
setup https-vs-nginx

VELOCITY_PORT=$(free_port)
ADMIN_PORT=$(free_port)
NGINX_PORT=$(free_port)

make_certificate
make_body "Velocity vs nginx benchmark body"

write_velocity_config '{
    "handler": "static_response", "status": 200,
    "headers": { "Content-Type": ["text/plain"] },
    "body": "'"$BODY"'"
  }'

cat >"$WORK/nginx/nginx.conf" <<EOF
$(nginx_front "$WORK/nginx")
    server {
        $(nginx_tls_listen "$NGINX_PORT")
        server_name localhost;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        ssl_protocols TLSv1.3;
        ssl_ecdh_curve X25519;
        location / {
            default_type text/plain;
            return 200 "$BODY";
        }
    }
}
EOF

log "starting Velocity on 127.0.0.1:$VELOCITY_PORT (admin 127.0.0.1:$ADMIN_PORT) and nginx $NGINX_VERSION on 127.0.0.1:$NGINX_PORT"
start_velocity
start_nginx nginx NGINX_PID
wait_url "https://127.0.0.1:$VELOCITY_PORT/" velocity "$VELOCITY_PID"
wait_url "https://127.0.0.1:$NGINX_PORT/" nginx "$NGINX_PID"

# --- check that both serve the same thing the same way ------------------------------------------------------
log "checking responses and TLS parameters"
check_servers

# --- warm-up, then the measured rounds ----------------------------------------------------------------------
run_rounds

# --- report -------------------------------------------------------------------------------------------------
report_header
report_rates test

printf '\nServer CPU time per request (median, µs; utime+stime of the server processes only):\n\n'
printf '| %-52s | %12s | %9s |\n' test Velocity nginx
printf '|%s|%s:|%s:|\n' "$(dashes 54)" "$(dashes 13)" "$(dashes 10)"
for test in h1 h2; do
    read -r -a v <<<"${CPU_US[$test,velocity]:-}"
    read -r -a n <<<"${CPU_US[$test,nginx]:-}"
    printf '| %-52s | %12s | %9s |\n' "$(test_name "$test")" "$(median "${v[@]}")" "$(median "${n[@]}")"
done

report_rounds "Every round (req/s):" RESULTS
report_problems
