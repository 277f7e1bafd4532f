# Shared by the benchmarks that put Velocity next to nginx (https-vs-nginx.sh, proxy-vs-nginx.sh): tools,
# ports, certificate, starting and stopping servers, one load run, rounds, medians and the common tables.
# Sourced, not run. Each script documents the environment it reads (ROUNDS, KEEP, VELOCITY_BIN,
# WRK_DURATION, H2_REQUESTS) and owns its server configs, its `measure` and its CPU table.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-3}
WRK_ARGS=(-t2 -c50 "-d${WRK_DURATION:-10s}")
H2LOAD_ARGS=(-n "${H2_REQUESTS:-200000}" -c 50 -m 10 -t 2)
RUN_TIMEOUT=120      # seconds; no single load run may take longer (h2load on a very slow server or proxy)
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

# setup NAME: the tools, the Velocity binary, and a fresh working directory $WORK (TMPDIR/NAME.XXXXXX) with
# room for the load tools' raw output, Velocity's data and the nginx under test; removed on exit unless KEEP=1.
setup() {
    install_missing
    build_velocity
    CLK_TCK=$(getconf CLK_TCK)
    NGINX_VERSION=$(nginx -v 2>&1 | sed 's|.*nginx/||; s| .*||')
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$WORK/raw" "$WORK/nginx/logs" "$WORK/nginx/tmp" "$WORK/velocity-data"
}

# --- ports, certificate, body -------------------------------------------------------------------------------
# Listening ports come from outside the kernel's ephemeral range: a run leaves thousands of connections in
# TIME-WAIT (a proxy run also to its upstream), and a port that one of them still holds as its local port
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

make_certificate() {  # $WORK/key.pem and cert.pem, shared by both servers; its fingerprint in CERT_SHA256
    log "certificate: one ECDSA P-256 key and self-signed certificate for localhost and 127.0.0.1"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -sha256 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
    CERT_SHA256=$(openssl x509 -in "$WORK/cert.pem" -noout -fingerprint -sha256 | cut -d= -f2)
}

# make_body TEXT: BODY_BYTES of "TEXT 0. TEXT 1. ..." in BODY and $WORK/body.txt; plain ASCII that needs no
# escaping in JSON nor in an nginx quoted string.
make_body() {
    local i
    BODY=""
    for ((i = 0; ${#BODY} < BODY_BYTES && i < 100; i++)); do BODY+="$1 $i. "; done
    BODY=${BODY:0:BODY_BYTES}
    printf '%s' "$BODY" >"$WORK/body.txt"
}

# --- nginx and Velocity -------------------------------------------------------------------------------------
nginx_tls_listen() {  # nginx_tls_listen PORT: the listen directive for TLS with HTTP/2, as this nginx spells it
    if [[ "$(printf '%s\n' 1.25.1 "$NGINX_VERSION" | sort -V | head -1)" == 1.25.1 ]]; then
        printf 'listen 127.0.0.1:%s ssl;\n        http2 on;' "$1"
    else
        printf 'listen 127.0.0.1:%s ssl http2;' "$1"   # nginx < 1.25.1 spells it on listen
    fi
}

# Temp paths inside the working directory, so no nginx needs to write under /var.
write_velocity_config() {  # write_velocity_config HANDLER_JSON: one HTTPS site on $VELOCITY_PORT answering with it
    cat >"$WORK/velocity.json" <<EOF
{
  "listeners": [{ "protocol": "https", "address": "127.0.0.1:$VELOCITY_PORT" }],
  "sites": [{ "routes": [{ "handle": [$1] }] }],
  "tls": { "certificates": [{ "certificate_file": "$WORK/cert.pem", "key_file": "$WORK/key.pem" }] },
  "logging": { "level": "warning", "format": "console", "access_log": false }
}
EOF
}

nginx_front() {  # nginx_front DIR: what both nginx front ends share, up to their own part of the http block
    cat <<EOF
worker_processes 2;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    server_tokens off;
    keepalive_timeout 65s;
    keepalive_requests 100000000;   # default 1000 would make nginx re-handshake mid-run; Velocity has no limit
$(nginx_temp_paths "$1")
EOF
}

nginx_temp_paths() {  # nginx_temp_paths DIR
    cat <<EOF
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
EOF
}

VELOCITY_PID=""
NGINX_PID=""
NGINX_MASTERS=()

start_velocity() {  # runs $WORK/velocity.json; PID in VELOCITY_PID
    "$VELOCITY" run --data-dir "$WORK/velocity-data" --admin "127.0.0.1:$ADMIN_PORT" --config "$WORK/velocity.json" \
        </dev/null >"$WORK/velocity.log" 2>&1 &
    VELOCITY_PID=$!
}

start_nginx() {  # start_nginx NAME VAR: runs $WORK/NAME/nginx.conf in the foreground of a job; master PID in VAR
    nginx -p "$WORK/$1" -c nginx.conf -e "$WORK/$1/logs/error.log" -g 'daemon off;' \
        </dev/null >"$WORK/$1.log" 2>&1 &
    NGINX_MASTERS+=("$!")
    printf -v "$2" '%s' "$!"
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

cleanup() {
    local i
    stop_pid "$VELOCITY_PID" TERM
    # Graceful nginx shutdown (the master waits for its workers), newest first: a proxy before its upstream.
    for ((i = ${#NGINX_MASTERS[@]} - 1; i >= 0; i--)); do stop_pid "${NGINX_MASTERS[i]}" QUIT; done
    if [[ -n "${WORK:-}" && -d "$WORK" ]]; then
        if [[ "${KEEP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    fi
}

nginx_pids() { echo "$1" $(ps -o pid= --ppid "$1"); }   # nginx_pids MASTER: the master and its workers

server_pids() {  # server_pids NAME: the processes doing the server's work
    case $1 in
        velocity) echo "$VELOCITY_PID" ;;
        nginx) nginx_pids "$NGINX_PID" ;;
    esac
}

server_port() { case $1 in velocity) echo "$VELOCITY_PORT" ;; nginx) echo "$NGINX_PORT" ;; esac; }

# check_servers: Velocity and nginx both answer $WORK/body.txt as text/plain over HTTP/1.1 and HTTP/2 with our
# certificate; prints the TLS parameters and HTTP/2 response headers each one uses.
check_servers() {
    local server port http served
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
}

# --- measuring ----------------------------------------------------------------------------------------------
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

us_per_request() {  # us_per_request TICKS REQUESTS
    awk -v t="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }'
}

median() {  # median of the numbers given as arguments
    (($#)) || { echo n/a; return; }
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# run_load TEST SERVER ROUND: runs the load tool once against SERVER, raw output in $WORK/raw. Leaves req/s
# (0 if none), the number of requests that succeeded, and what went wrong (empty if nothing) in LOAD_RPS,
# LOAD_REQUESTS and LOAD_FAILED, for the script's `measure` to take its CPU readings around.
run_load() {
    local test=$1 server=$2 round=$3 port out rps requests failed=""
    port=$(server_port "$server")
    out="$WORK/raw/$test-$server-$round.txt"
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
    [[ -n "$rps" ]] || { rps=0; failed="${failed:-no result}"; }
    LOAD_RPS=$rps LOAD_REQUESTS=$requests LOAD_FAILED=$failed
}

# record_load TEST SERVER ROUND TICKS: files the last run_load's req/s, the server's CPU per request (TICKS of
# CPU time over the run) and any failure, and prints the round's line.
declare -A RESULTS=() CPU_US=() ERRORS=()
record_load() {
    local test=$1 server=$2 round=$3 ticks=$4
    RESULTS[$test,$server]+="$LOAD_RPS "
    if [[ -n "$LOAD_REQUESTS" && "$LOAD_REQUESTS" -gt 0 ]]; then
        CPU_US[$test,$server]+="$(us_per_request "$ticks" "$LOAD_REQUESTS") "
    fi
    [[ -z "$LOAD_FAILED" ]] || ERRORS[$test,$server]+="round $round: $LOAD_FAILED; "
    printf '    %-3s %-8s round %d: %10.0f req/s%s\n' "$test" "$server" "$round" "$LOAD_RPS" \
        "${LOAD_FAILED:+   (!) $LOAD_FAILED}" >&2
}

# run_rounds: warns about a busy machine (LOAD_BEFORE), warms both servers up, then calls the script's
# `measure TEST SERVER ROUND` ROUNDS times per test and server, alternating which server goes first.
run_rounds() {
    local server port round test order
    LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
    if awk -v l="$LOAD_BEFORE" 'BEGIN { exit !(l > 0.5) }'; then
        log "warning: 1-minute load average is $LOAD_BEFORE before the run; other work on this machine skews the numbers"
    fi

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
}

# --- report -------------------------------------------------------------------------------------------------
test_name() { case $1 in h1) echo "HTTPS HTTP/1.1 (wrk ${WRK_ARGS[*]})" ;; h2) echo "HTTPS HTTP/2 (h2load ${H2LOAD_ARGS[*]})" ;; esac; }

dashes() { printf -- '-%.0s' $(seq "$1"); }   # dashes N: a table rule N characters wide

report_header() {  # report_header [LOAD_AFTER]: what ran where, and from which commit when built here
    printf '\nMedian of %d rounds, %s, %s CPUs (%s), nginx %s, load average before the run %s%s\n\n' "$ROUNDS" \
        "$(date -u +%Y-%m-%dT%H:%MZ)" "$(nproc)" "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
        "$NGINX_VERSION" "$LOAD_BEFORE" "${1:+ (after $1)}"
    if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1 && [[ -z "${VELOCITY_BIN:-}" ]]; then
        printf 'Velocity built from %s%s\n\n' "$(git -C "$ROOT" rev-parse --short HEAD)" \
            "$([[ -n "$(git -C "$ROOT" status --porcelain -- Sources Package.swift)" ]] && echo ' + uncommitted changes under Sources/')"
    fi
}

report_rates() {  # report_rates HEADING: median req/s of both servers and their ratio; HEADING heads the first column
    local test mv mn
    local -a v n
    printf '| %-52s | %14s | %11s | %14s |\n' "$1" "Velocity req/s" "nginx req/s" "Velocity/nginx"
    printf '|%s|%s:|%s:|%s:|\n' "$(dashes 54)" "$(dashes 15)" "$(dashes 12)" "$(dashes 15)"
    for test in h1 h2; do
        read -r -a v <<<"${RESULTS[$test,velocity]}"
        read -r -a n <<<"${RESULTS[$test,nginx]}"
        mv=$(median "${v[@]}")
        mn=$(median "${n[@]}")
        printf '| %-52s | %14.0f | %11.0f | %14s |\n' "$(test_name "$test")" "$mv" "$mn" \
            "$(awk -v a="$mv" -v b="$mn" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
    done
}

report_rounds() {  # report_rounds TITLE ARRAY: every round's value of ARRAY (RESULTS, ...), per test and server
    local -n values=$2
    local test server
    printf '\n%s\n' "$1"
    for test in h1 h2; do
        for server in velocity nginx; do
            printf '  %-3s %-8s %s\n' "$test" "$server" "${values[$test,$server]}"
        done
    done
}

report_problems() {
    local key
    ((${#ERRORS[@]})) || return 0
    printf '\n(!) problems:\n'
    for key in "${!ERRORS[@]}"; do printf '  %s: %s\n' "$key" "${ERRORS[$key]}"; done
}
