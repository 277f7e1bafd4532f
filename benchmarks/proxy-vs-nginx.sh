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

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
WRK_ARGS=(-t2 -c50 "-d${WRK_DURATION:-10s}")
H2LOAD_ARGS=(-n "${H2_REQUESTS:-200000}" -c 50 -m 10 -t 2)
RUN_TIMEOUT=120      # seconds; no single load run may take longer (h2load on a very slow proxy)
BODY_BYTES=1024

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- tools --------------------------------------------------------------------------------------------------
install_missing() {
    local -a missing=()
    command -v nginx >/dev/null || missing+=(nginx)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v h2load >/dev/null || missing+=(nghttp2-client)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v curl >/dev/null || missing+=(curl)
    command -v ps >/dev/null || missing+=(procps)
    if [[ -z "${VELOCITY_BIN:-}" ]]; then
        dpkg-query -W -f='${Status}' libsqlite3-dev 2>/dev/null | grep -q "install ok installed" \
            || missing+=(libsqlite3-dev)
    fi
    ((${#missing[@]})) || return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    log "installing ${missing[*]}"
    # Another apt run may hold the dpkg lock: wait for it (bounded) instead of failing.
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
}

build_velocity() {
    if [[ -n "${VELOCITY_BIN:-}" ]]; then
        VELOCITY=$VELOCITY_BIN
    else
        log "building Velocity (release; the first build takes several minutes)"
        (cd "$ROOT" && swift build -c release --product velocity >&2)
        VELOCITY="$(cd "$ROOT" && swift build -c release --show-bin-path)/velocity"
    fi
    [[ -x "$VELOCITY" ]] || die "no velocity binary at $VELOCITY"
}

# --- helpers ------------------------------------------------------------------------------------------------
# Listening ports come from outside the kernel's ephemeral range: a proxy run leaves thousands of
# connections to the upstream in TIME-WAIT, and a port that one of them still holds as its local port
# accepts no connections yet cannot be bound.
read -r EPHEMERAL_LOW EPHEMERAL_HIGH </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null \
    || { EPHEMERAL_LOW=32768; EPHEMERAL_HIGH=60999; }
OUTSIDE_EPHEMERAL=$(( (EPHEMERAL_LOW > 10000 ? EPHEMERAL_LOW - 10000 : 0) + (EPHEMERAL_HIGH < 65000 ? 65000 - EPHEMERAL_HIGH : 0) ))
TAKEN_PORTS=" "
free_port() {  # a port no socket on this machine uses, outside the ephemeral range; bounded number of tries
    local port attempt
    for ((attempt = 0; attempt < 200; attempt++)); do
        port=$((10000 + (RANDOM * 32768 + RANDOM) % 55000))
        ((port < EPHEMERAL_LOW || port > EPHEMERAL_HIGH || OUTSIDE_EPHEMERAL < 1000)) || continue
        [[ "$TAKEN_PORTS" == *" $port "* ]] && continue
        if command -v ss >/dev/null && [[ -n "$(ss -Htan "( sport = :$port )" 2>/dev/null)" ]]; then
            continue
        fi
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            TAKEN_PORTS+="$port "
            echo "$port"
            return 0
        fi
    done
    die "found no free port"
}

wait_url() {  # wait_url URL NAME PID: until the server answers 2xx at URL (at most ~30 s)
    local url=$1 name=$2 pid=$3 attempt
    for ((attempt = 0; attempt < 150; attempt++)); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during start-up (see $WORK/$name.log)"
        if curl -sf -o /dev/null --max-time 2 --cacert "$WORK/cert.pem" "$url"; then
            return 0
        fi
        sleep 0.2
    done
    die "$name did not answer at $url"
}

stop_pid() {  # stop_pid PID SIGNAL: signal a process we started, wait for it (bounded), then SIGKILL
    local pid=$1 signal=$2 attempt
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill "-$signal" "$pid" 2>/dev/null || true
    for ((attempt = 0; attempt < 100; attempt++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

VELOCITY_PID=""
NGINX_PID=""
UPSTREAM_PID=""
cleanup() {
    stop_pid "$VELOCITY_PID" TERM
    stop_pid "$NGINX_PID" QUIT      # graceful nginx shutdown; the master waits for its workers
    stop_pid "$UPSTREAM_PID" QUIT
    if [[ -n "${WORK:-}" && -d "$WORK" ]]; then
        if [[ "${KEEP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    fi
}

cpu_ticks() {  # cpu_ticks PID...: utime+stime of the processes, in clock ticks
    local total=0 pid
    local -a fields
    for pid in "$@"; do
        [[ -r /proc/$pid/stat ]] || continue
        # The fields after the ")" that closes the command name; utime and stime are the 12th and 13th.
        read -r -a fields <<<"$(sed 's/^.*) //' "/proc/$pid/stat")"
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}

server_pids() {  # server_pids NAME: the processes doing the server's work
    case $1 in
        velocity) echo "$VELOCITY_PID" ;;
        nginx) echo "$NGINX_PID" $(ps -o pid= --ppid "$NGINX_PID") ;;
        upstream) echo "$UPSTREAM_PID" $(ps -o pid= --ppid "$UPSTREAM_PID") ;;
    esac
}

server_port() { case $1 in velocity) echo "$VELOCITY_PORT" ;; nginx) echo "$NGINX_PORT" ;; esac; }

median() {  # median of the numbers given as arguments
    (($#)) || { echo n/a; return; }
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

us_per_request() {  # us_per_request TICKS REQUESTS
    awk -v t="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }'
}

# --- one measurement ----------------------------------------------------------------------------------------
# measure TEST SERVER ROUND: runs the load tool once through the proxy SERVER, records req/s and the CPU per
# request of the proxy and of the upstream behind it.
declare -A RESULTS=() CPU_US=() UPSTREAM_CPU_US=() UPSTREAM_CONNS=() ERRORS=()
upstream_accepts() {  # connections the upstream has accepted since it started (its stub_status, on its own port)
    curl -sf --max-time 5 "http://127.0.0.1:$UPSTREAM_STATUS_PORT/" | awk 'NR == 3 { print $1 }'
}
measure() {
    local test=$1 server=$2 round=$3 port out rps requests before after ticks up_before up_after failed=""
    local accepts_before accepts_after
    port=$(server_port "$server")
    out="$WORK/raw/$test-$server-$round.txt"
    local -a pids upstream_pids
    read -r -a pids <<<"$(server_pids "$server")"
    read -r -a upstream_pids <<<"$(server_pids upstream)"
    before=$(cpu_ticks "${pids[@]}")
    up_before=$(cpu_ticks "${upstream_pids[@]}")
    accepts_before=$(upstream_accepts)
    case $test in
        h1)
            timeout "$RUN_TIMEOUT" wrk "${WRK_ARGS[@]}" "https://127.0.0.1:$port/" >"$out" 2>&1 || failed="wrk failed"
            rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
            requests=$(awk '/requests in/ { print $1 }' "$out")
            grep -qE 'Non-2xx|Socket errors' "$out" && failed="$(grep -E 'Non-2xx|Socket errors' "$out" | tr -s ' ')"
            ;;
        h2)
            timeout "$RUN_TIMEOUT" h2load "${H2LOAD_ARGS[@]}" "https://127.0.0.1:$port/" >"$out" 2>&1 \
                || failed="h2load failed or timed out"
            rps=$(awk '/^finished in/ { gsub(",", ""); print $4 }' "$out")
            requests=$(awk '/^requests:/ { print $8 }' "$out")   # succeeded
            local twoxx
            twoxx=$(awk '/^status codes:/ { print $3 }' "$out")
            [[ "$requests" == "${H2LOAD_ARGS[1]}" && "$twoxx" == "${H2LOAD_ARGS[1]}" ]] \
                || failed="${failed:-only ${requests:-0} succeeded, ${twoxx:-0} 2xx}"
            ;;
    esac
    after=$(cpu_ticks "${pids[@]}")
    up_after=$(cpu_ticks "${upstream_pids[@]}")
    accepts_after=$(upstream_accepts)
    ticks=$((after - before))
    [[ -n "$rps" ]] || { rps=0; failed="${failed:-no result}"; }
    RESULTS[$test,$server]+="$rps "
    UPSTREAM_CONNS[$test,$server]+="$((accepts_after - accepts_before - 1)) "   # minus the status request
    if [[ -n "$requests" && "$requests" -gt 0 ]]; then
        CPU_US[$test,$server]+="$(us_per_request "$ticks" "$requests") "
        UPSTREAM_CPU_US[$test,$server]+="$(us_per_request "$((up_after - up_before))" "$requests") "
    fi
    [[ -z "$failed" ]] || ERRORS[$test,$server]+="round $round: $failed; "
    printf '    %-3s %-8s round %d: %10.0f req/s%s\n' "$test" "$server" "$round" "$rps" \
        "${failed:+   (!) $failed}" >&2
}

# --- main ---------------------------------------------------------------------------------------------------
install_missing
build_velocity
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/proxy-vs-nginx.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/raw" "$WORK/nginx/logs" "$WORK/nginx/tmp" "$WORK/upstream/logs" "$WORK/upstream/tmp" \
    "$WORK/velocity-data"

VELOCITY_PORT=$(free_port)
ADMIN_PORT=$(free_port)
NGINX_PORT=$(free_port)
UPSTREAM_PORT=$(free_port)
UPSTREAM_STATUS_PORT=$(free_port)

log "certificate: one ECDSA P-256 key and self-signed certificate for localhost and 127.0.0.1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -sha256 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
CERT_SHA256=$(openssl x509 -in "$WORK/cert.pem" -noout -fingerprint -sha256 | cut -d= -f2)

# The body: 1 KiB of plain ASCII that needs no escaping in an nginx quoted string. Only the upstream has it.
BODY=""
for ((i = 0; ${#BODY} < BODY_BYTES && i < 100; i++)); do BODY+="Velocity vs nginx proxy benchmark body $i. "; done
BODY=${BODY:0:BODY_BYTES}
printf '%s' "$BODY" >"$WORK/body.txt"

# Temp paths inside the working directory, so neither nginx needs to write under /var.
nginx_temp_paths() {  # nginx_temp_paths DIR
    cat <<EOF
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
EOF
}

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

cat >"$WORK/velocity.json" <<EOF
{
  "listeners": [{ "protocol": "https", "address": "127.0.0.1:$VELOCITY_PORT" }],
  "sites": [{ "routes": [{ "handle": [{
    "handler": "reverse_proxy",
    "upstreams": [{ "dial": "127.0.0.1:$UPSTREAM_PORT" }]
  }] }] }],
  "tls": { "certificates": [{ "certificate_file": "$WORK/cert.pem", "key_file": "$WORK/key.pem" }] },
  "logging": { "level": "warning", "format": "console", "access_log": false }
}
EOF

NGINX_VERSION=$(nginx -v 2>&1 | sed 's|.*nginx/||; s| .*||')
if [[ "$(printf '%s\n' 1.25.1 "$NGINX_VERSION" | sort -V | head -1)" == 1.25.1 ]]; then
    NGINX_LISTEN="listen 127.0.0.1:$NGINX_PORT ssl;
        http2 on;"
else
    NGINX_LISTEN="listen 127.0.0.1:$NGINX_PORT ssl http2;"   # nginx < 1.25.1 spells it on listen
fi
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    server_tokens off;
    keepalive_timeout 65s;
    keepalive_requests 100000000;   # default 1000 would make nginx re-handshake mid-run; Velocity has no limit
$(nginx_temp_paths "$WORK/nginx")
    upstream backend {
        server 127.0.0.1:$UPSTREAM_PORT;
        keepalive 64;                   # idle connections kept per worker (Velocity: 32 per event loop)
        keepalive_requests 100000000;   # default 1000 would close pooled connections mid-run
    }
    server {
        $NGINX_LISTEN
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
nginx -p "$WORK/upstream" -c nginx.conf -e "$WORK/upstream/logs/error.log" -g 'daemon off;' \
    </dev/null >"$WORK/upstream.log" 2>&1 &
UPSTREAM_PID=$!
wait_url "http://127.0.0.1:$UPSTREAM_PORT/" upstream "$UPSTREAM_PID"
[[ -n "$(upstream_accepts)" ]] || die "the upstream's stub_status does not answer (nginx without http_stub_status_module?)"

log "starting Velocity on 127.0.0.1:$VELOCITY_PORT (admin 127.0.0.1:$ADMIN_PORT) and nginx $NGINX_VERSION on 127.0.0.1:$NGINX_PORT, both proxying to it"
"$VELOCITY" run --data-dir "$WORK/velocity-data" --admin "127.0.0.1:$ADMIN_PORT" --config "$WORK/velocity.json" \
    </dev/null >"$WORK/velocity.log" 2>&1 &
VELOCITY_PID=$!
nginx -p "$WORK/nginx" -c nginx.conf -e "$WORK/nginx/logs/error.log" -g 'daemon off;' \
    </dev/null >"$WORK/nginx.log" 2>&1 &
NGINX_PID=$!
wait_url "https://127.0.0.1:$VELOCITY_PORT/" velocity "$VELOCITY_PID"
wait_url "https://127.0.0.1:$NGINX_PORT/" nginx "$NGINX_PID"

# --- check that both proxies serve the upstream's answer the same way ---------------------------------------
log "checking responses and TLS parameters"
curl -sS --fail --max-time 5 -o "$WORK/upstream.body" "http://127.0.0.1:$UPSTREAM_PORT/"
cmp -s "$WORK/body.txt" "$WORK/upstream.body" || die "the upstream did not return the expected body"
for server in velocity nginx; do
    port=$(server_port "$server")
    for http in --http1.1 --http2; do
        curl -sS --fail --max-time 5 --cacert "$WORK/cert.pem" "$http" -D "$WORK/$server$http.headers" \
            -o "$WORK/$server$http.body" "https://127.0.0.1:$port/"
        cmp -s "$WORK/body.txt" "$WORK/$server$http.body" || die "$server ($http) did not return the expected body"
        grep -qi '^content-type: text/plain' "$WORK/$server$http.headers" || die "$server ($http): no text/plain"
    done
    served=$(openssl s_client -connect "127.0.0.1:$port" -servername localhost </dev/null 2>/dev/null \
        | openssl x509 -noout -fingerprint -sha256 | cut -d= -f2)
    [[ "$served" == "$CERT_SHA256" ]] || die "$server serves a different certificate ($served)"
    timeout 30 h2load -n 10 -c 1 "https://127.0.0.1:$port/" >"$WORK/$server.tls.txt" 2>&1 || true
    printf '    %-8s %s | %s | %s | ALPN %s | h2 response headers: %s\n' "$server" \
        "$(awk -F': ' '/^TLS Protocol/ { print $2 }' "$WORK/$server.tls.txt")" \
        "$(awk -F': ' '/^Cipher/ { print $2 }' "$WORK/$server.tls.txt")" \
        "$(awk -F': ' '/^Server Temp Key/ { print $2 }' "$WORK/$server.tls.txt")" \
        "$(awk -F': ' '/^Application protocol/ { print $2 }' "$WORK/$server.tls.txt")" \
        "$(tr -d '\r' <"$WORK/$server--http2.headers" | awk 'NR > 1 && NF { printf "%s; ", $0 }')" >&2
done

LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$LOAD_BEFORE" 'BEGIN { exit !(l > 0.5) }'; then
    log "warning: 1-minute load average is $LOAD_BEFORE before the run; other work on this machine skews the numbers"
fi

# --- warm-up, then the measured rounds ----------------------------------------------------------------------
log "warm-up (not measured)"
for server in velocity nginx; do
    port=$(server_port "$server")
    timeout 60 wrk -t2 -c50 -d2s "https://127.0.0.1:$port/" >/dev/null 2>&1 || true
    timeout 60 h2load -n 20000 -c 50 -m 10 -t 2 "https://127.0.0.1:$port/" >/dev/null 2>&1 || true
done

log "measuring: $ROUNDS rounds; wrk ${WRK_ARGS[*]}; h2load ${H2LOAD_ARGS[*]}"
for ((round = 1; round <= ROUNDS; round++)); do
    if ((round % 2)); then order=(velocity nginx); else order=(nginx velocity); fi
    for test in h1 h2; do
        for server in "${order[@]}"; do
            measure "$test" "$server" "$round"
            sleep 1
        done
    done
done
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)

# --- report -------------------------------------------------------------------------------------------------
name() { case $1 in h1) echo "HTTPS HTTP/1.1 (wrk ${WRK_ARGS[*]})" ;; h2) echo "HTTPS HTTP/2 (h2load ${H2LOAD_ARGS[*]})" ;; esac; }
printf '\nMedian of %d rounds, %s, %s CPUs (%s), nginx %s, load average before the run %s (after %s)\n\n' \
    "$ROUNDS" "$(date -u +%Y-%m-%dT%H:%MZ)" "$(nproc)" \
    "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$NGINX_VERSION" "$LOAD_BEFORE" "$LOAD_AFTER"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1 && [[ -z "${VELOCITY_BIN:-}" ]]; then
    printf 'Velocity built from %s%s\n\n' "$(git -C "$ROOT" rev-parse --short HEAD)" \
        "$([[ -n "$(git -C "$ROOT" status --porcelain -- Sources Package.swift)" ]] && echo ' + uncommitted changes under Sources/')"
fi
printf '| %-52s | %14s | %11s | %14s |\n' "test (through the proxy)" "Velocity req/s" "nginx req/s" "Velocity/nginx"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..54})" "$(printf -- '-%.0s' {1..15}):" \
    "$(printf -- '-%.0s' {1..12}):" "$(printf -- '-%.0s' {1..15}):"
for test in h1 h2; do
    read -r -a v <<<"${RESULTS[$test,velocity]}"
    read -r -a n <<<"${RESULTS[$test,nginx]}"
    mv=$(median "${v[@]}")
    mn=$(median "${n[@]}")
    printf '| %-52s | %14.0f | %11.0f | %14s |\n' "$(name "$test")" "$mv" "$mn" \
        "$(awk -v a="$mv" -v b="$mn" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
done

printf '\nServer CPU time per request (median, µs; utime+stime of the proxy processes only, and of the\n'
printf 'upstream nginx while it served through each proxy):\n\n'
printf '| %-52s | %12s | %9s | %19s | %16s |\n' test Velocity nginx "upstream (Velocity)" "upstream (nginx)"
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..54})" "$(printf -- '-%.0s' {1..13}):" \
    "$(printf -- '-%.0s' {1..10}):" "$(printf -- '-%.0s' {1..20}):" "$(printf -- '-%.0s' {1..17}):"
for test in h1 h2; do
    read -r -a v <<<"${CPU_US[$test,velocity]:-}"
    read -r -a n <<<"${CPU_US[$test,nginx]:-}"
    read -r -a uv <<<"${UPSTREAM_CPU_US[$test,velocity]:-}"
    read -r -a un <<<"${UPSTREAM_CPU_US[$test,nginx]:-}"
    printf '| %-52s | %12s | %9s | %19s | %16s |\n' "$(name "$test")" "$(median "${v[@]}")" "$(median "${n[@]}")" \
        "$(median "${uv[@]}")" "$(median "${un[@]}")"
done

printf '\nEvery round (req/s):\n'
for test in h1 h2; do
    for server in velocity nginx; do
        printf '  %-3s %-8s %s\n' "$test" "$server" "${RESULTS[$test,$server]}"
    done
done
printf '\nConnections opened to the upstream in each round (the client keeps 50 open to the proxy):\n'
for test in h1 h2; do
    for server in velocity nginx; do
        printf '  %-3s %-8s %s\n' "$test" "$server" "${UPSTREAM_CONNS[$test,$server]}"
    done
done
if ((${#ERRORS[@]})); then
    printf '\n(!) problems:\n'
    for key in "${!ERRORS[@]}"; do printf '  %s: %s\n' "$key" "${ERRORS[$key]}"; done
fi
