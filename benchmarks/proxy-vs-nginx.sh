#!/usr/bin/env bash
# Reverse-proxy throughput of Velocity next to nginx, on this machine, in one run.
#
# What it measures: requests per second THROUGH a reverse proxy — Velocity's `reverse_proxy` handler next to
# nginx's `proxy_pass` — to the same upstream, over TLS 1.3 on 127.0.0.1 on the client side, for
#   - HTTPS HTTP/1.1: wrk -t2 -c50 -d10s            (50 keep-alive connections, one request in flight each)
#   - HTTPS HTTP/2:   h2load -n 200000 -c 50 -m 10 -t 2  (50 connections, 10 concurrent streams each, ALPN h2)
# The upstream is a third server, a separate nginx (its own config, `worker_processes 1`, keep-alive without
# a request limit, no access log) on 127.0.0.1 answering every request with a fixed 1 KiB text/plain body
# (`return 200`), so the upstream's cost is the same behind both proxies. Both proxies speak plain HTTP/1.1
# to it on kept-alive connections: nginx with `proxy_http_version 1.1; proxy_set_header Connection "";` and
# an `upstream` block with `keepalive 64`; Velocity pools its upstream connections by itself.
# Both proxies get the same ECDSA P-256 certificate and key (made here with openssl), TLS 1.3 with X25519
# (Debian's OpenSSL 3.0 clients offer no ML-KEM group), keep-alive without a request limit, no access log,
# two workers (nginx `worker_processes 2`, Velocity one event loop per core). Each test runs ROUNDS times per
# proxy (default 3), alternating which proxy goes first, and the table shows the MEDIAN.
#
# How to read it: the last column is Velocity/nginx (1.00 = as fast as nginx, 0.50 = half nginx's rate).
# The client and the upstream run on the same CPUs as the proxy, so absolute numbers depend on the machine
# and on how much CPU the client and the upstream need; compare the ratio, and the "server CPU per request"
# table, which counts only the proxy processes' CPU time (utime+stime from /proc) and so does not depend on
# how the client fares. The same table shows the upstream's CPU per request behind each proxy, which should
# be about equal (it is the same server doing the same work), and how many connections each proxy opened to
# the upstream per run (from the upstream's stub_status). Run it on an otherwise idle machine (the
# script warns when the load average is above 0.5); the rounds printed under the table show how noisy a run
# was. docs/benchmarks.md holds a recorded run and its reading.
#
# Usage: benchmarks/proxy-vs-nginx.sh          (installs nginx, wrk, nghttp2-client, openssl if missing on
#                                                Debian, then builds Velocity in release mode)
# Environment: ROUNDS=3  KEEP=1 (keep the temp directory with configs and raw tool output)
#              VELOCITY_BIN=path (skip the build and use this binary)
#              WRK_DURATION=10s  H2_REQUESTS=200000 (only to try the script quickly; keep them for real runs)
# Everything listens on 127.0.0.1 only; all three servers are stopped on exit.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"   # what this shares with https-vs-nginx.sh

# --- one measurement ----------------------------------------------------------------------------------------
# measure TEST SERVER ROUND: runs the load tool once through the proxy SERVER, records req/s and the CPU per
# request of the proxy and of the upstream behind it.
declare -A UPSTREAM_CPU_US=() UPSTREAM_CONNS=()
upstream_accepts() {  # connections the upstream has accepted since it started (its stub_status, on its own port)
    curl -sf --max-time 5 "http://127.0.0.1:$UPSTREAM_STATUS_PORT/" | awk 'NR == 3 { print $1 }'
}
measure() {
    local test=$1 server=$2 before after up_before up_after accepts_before accepts_after
    local -a pids upstream_pids
    read -r -a pids <<<"$(server_pids "$server")"
    read -r -a upstream_pids <<<"$(nginx_pids "$UPSTREAM_PID")"
    before=$(cpu_ticks "${pids[@]}")
    up_before=$(cpu_ticks "${upstream_pids[@]}")
    accepts_before=$(upstream_accepts)
    run_load "$@"
    after=$(cpu_ticks "${pids[@]}")
    up_after=$(cpu_ticks "${upstream_pids[@]}")
    accepts_after=$(upstream_accepts)
    UPSTREAM_CONNS[$test,$server]+="$((accepts_after - accepts_before - 1)) "   # minus the status request
    if [[ -n "$LOAD_REQUESTS" && "$LOAD_REQUESTS" -gt 0 ]]; then
        UPSTREAM_CPU_US[$test,$server]+="$(us_per_request "$((up_after - up_before))" "$LOAD_REQUESTS") "
    fi
    record_load "$@" "$((after - before))"
}

# --- main ---------------------------------------------------------------------------------------------------
setup proxy-vs-nginx
mkdir -p "$WORK/upstream/logs" "$WORK/upstream/tmp"

VELOCITY_PORT=$(free_port)
ADMIN_PORT=$(free_port)
NGINX_PORT=$(free_port)
UPSTREAM_PORT=$(free_port)
UPSTREAM_STATUS_PORT=$(free_port)

make_certificate
make_body "Velocity vs nginx proxy benchmark body"   # only the upstream has it

# The upstream: plain HTTP/1.1, one worker, keep-alive without a request limit (the default 1000 would make
# both proxies reconnect mid-run), the same 1 KiB answer to every request.
cat >"$WORK/upstream/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/upstream/nginx.pid;
error_log $WORK/upstream/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    server_tokens off;
    keepalive_timeout 65s;
    keepalive_requests 100000000;
$(nginx_temp_paths "$WORK/upstream")
    server {
        listen 127.0.0.1:$UPSTREAM_PORT;
        server_name upstream;
        location / {
            default_type text/plain;
            return 200 "$BODY";
        }
    }
    server {   # its connection counters, on a port of their own that only this script asks
        listen 127.0.0.1:$UPSTREAM_STATUS_PORT;
        location / { stub_status; }
    }
}
EOF

write_velocity_config '{
    "handler": "reverse_proxy",
    "upstreams": [{ "dial": "127.0.0.1:'"$UPSTREAM_PORT"'" }]
  }'

cat >"$WORK/nginx/nginx.conf" <<EOF
$(nginx_front "$WORK/nginx")
    upstream backend {
        server 127.0.0.1:$UPSTREAM_PORT;
        keepalive 64;                   # idle connections kept per worker (Velocity: 256 per event loop)
        keepalive_requests 100000000;   # default 1000 would close pooled connections mid-run
    }
    server {
        $(nginx_tls_listen "$NGINX_PORT")
        server_name localhost;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        ssl_protocols TLSv1.3;
        ssl_ecdh_curve X25519;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF

log "starting the upstream (nginx $NGINX_VERSION, 1 worker) on 127.0.0.1:$UPSTREAM_PORT"
start_nginx upstream UPSTREAM_PID
wait_url "http://127.0.0.1:$UPSTREAM_PORT/" upstream "$UPSTREAM_PID"
[[ -n "$(upstream_accepts)" ]] || die "the upstream's stub_status does not answer (nginx without http_stub_status_module?)"

log "starting Velocity on 127.0.0.1:$VELOCITY_PORT (admin 127.0.0.1:$ADMIN_PORT) and nginx $NGINX_VERSION on 127.0.0.1:$NGINX_PORT, both proxying to it"
start_velocity
start_nginx nginx NGINX_PID
wait_url "https://127.0.0.1:$VELOCITY_PORT/" velocity "$VELOCITY_PID"
wait_url "https://127.0.0.1:$NGINX_PORT/" nginx "$NGINX_PID"

# --- check that both proxies serve the upstream's answer the same way ---------------------------------------
log "checking responses and TLS parameters"
curl -sS --fail --max-time 5 -o "$WORK/upstream.body" "http://127.0.0.1:$UPSTREAM_PORT/"
cmp -s "$WORK/body.txt" "$WORK/upstream.body" || die "the upstream did not return the expected body"
check_servers

# --- warm-up, then the measured rounds ----------------------------------------------------------------------
run_rounds
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)

# --- report -------------------------------------------------------------------------------------------------
report_header "$LOAD_AFTER"
report_rates "test (through the proxy)"

printf '\nServer CPU time per request (median, µs; utime+stime of the proxy processes only, and of the\n'
printf 'upstream nginx while it served through each proxy):\n\n'
printf '| %-52s | %12s | %9s | %19s | %16s |\n' test Velocity nginx "upstream (Velocity)" "upstream (nginx)"
printf '|%s|%s:|%s:|%s:|%s:|\n' "$(dashes 54)" "$(dashes 13)" "$(dashes 10)" "$(dashes 20)" "$(dashes 17)"
for test in h1 h2; do
    read -r -a v <<<"${CPU_US[$test,velocity]:-}"
    read -r -a n <<<"${CPU_US[$test,nginx]:-}"
    read -r -a uv <<<"${UPSTREAM_CPU_US[$test,velocity]:-}"
    read -r -a un <<<"${UPSTREAM_CPU_US[$test,nginx]:-}"
    printf '| %-52s | %12s | %9s | %19s | %16s |\n' "$(test_name "$test")" "$(median "${v[@]}")" "$(median "${n[@]}")" \
        "$(median "${uv[@]}")" "$(median "${un[@]}")"
done

report_rounds "Every round (req/s):" RESULTS
report_rounds "Connections opened to the upstream in each round (the client keeps 50 open to the proxy):" UPSTREAM_CONNS
report_problems
