#!/usr/bin/env bash
# HTTP decisions/s and latency on loopback: the palisade gate (memory and
# Redis limiter, forward-auth and /v1/decide) beside nginx `limit_req` with the
# same keyed limit (1000 r/s, burst 50, keyed by X-Forwarded-For; wrk sends
# 131k distinct client addresses).
#
#   bench/gate_http.sh            # DUR=10s CONN=64 THREADS=2 ROUNDS=1 STORES="memory redis"
#
# ROUNDS=k repeats the whole sequence k times (nginx, then the gate), so
# that drift in the machine's speed hits both sides alike; report the range.
# LEASE=k sets `local_lease = k` on the Redis limit (the local fast path;
# default 0: every request asks Redis), and the Redis rows then include a
# hot-key run: 64 clients, each well under its limit, so reservations are
# spent (with 131k clients a key is seen too rarely for that).
# WARMUP=1s (default; 0 to skip) runs each load once, unmeasured, before
# the measured run on the same server process, for nginx and the gate alike:
# a fresh process's first second (page faults, the scheduler placing wrk and
# the server on the 2 cores, first-seen keys) had p99 of 2-3 ms for both
# servers, and a gate serves for days. Set WARMUP=0 to measure cold starts.
# PERF_STAT=1 (needs `perf`) also prints each server's CPU time per request
# on the forward-auth rows: on 2 cores wrk can be the bottleneck, and then
# req/s compares the client more than the servers.
#
# Needs: wrk, nginx (apt-get install -y nginx wrk), redis at 127.0.0.1:6379,
# and the gate binary: `cargo build --release -p palisade-gate --example serve`
# (the same server code as `palisade gate serve`; set GATE_BIN to use the CLI
# as `GATE_BIN="palisade gate serve --config"`). Everything stays on loopback.
set -euo pipefail
DUR=${DUR:-10s}
CONN=${CONN:-64}
WRK_THREADS=${THREADS:-2}
SERVER_THREADS=${SERVER_THREADS:-2}
TARGET=${CARGO_TARGET_DIR:-target}
GATE_BIN=${GATE_BIN:-$TARGET/release/examples/serve}
PORT_GATE=${PORT_GATE:-18080}
PORT_NGINX=${PORT_NGINX:-18081}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/auth.lua" <<'LUA'
math.randomseed(42)
request = function()
  local ip = string.format("10.%d.%d.%d", math.random(0, 1), math.random(0, 255), math.random(0, 255))
  return wrk.format("GET", wrk.path, {["X-Forwarded-For"] = ip, ["X-Forwarded-Uri"] = "/products/1?ref=home",
    ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", ["Accept-Language"] = "en"})
end
LUA
cat > "$work/decide.lua" <<'LUA'
math.randomseed(42)
request = function()
  local ip = string.format("10.%d.%d.%d", math.random(0, 1), math.random(0, 255), math.random(0, 255))
  local body = '{"ip":"' .. ip .. '","method":"GET","url":"/products/1?ref=home","headers":{"user-agent":"Mozilla/5.0 Firefox/120.0","accept-language":"en"}}'
  return wrk.format("POST", "/v1/decide", {["Content-Type"] = "application/json"}, body)
end
LUA

# 64 clients, each well under 1000 r/s at these rates: reservations get spent.
cat > "$work/hot.lua" <<'LUA'
math.randomseed(42)
request = function()
  local ip = string.format("10.0.0.%d", math.random(0, 63))
  return wrk.format("GET", wrk.path, {["X-Forwarded-For"] = ip, ["X-Forwarded-Uri"] = "/products/1?ref=home",
    ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", ["Accept-Language"] = "en"})
end
LUA

# One client: both servers must answer mostly 429 (proves the limit is applied).
cat > "$work/one.lua" <<'LUA'
request = function()
  return wrk.format("GET", wrk.path, {["X-Forwarded-For"] = "10.9.9.9", ["X-Forwarded-Uri"] = "/"})
end
LUA

policy() { # $1 = store
  cat <<TOML
[server]
listen = "127.0.0.1:$PORT_GATE"
[identity]
trusted_proxies = ["127.0.0.1/32"]
[redis]
url = "redis://127.0.0.1:6379/"
prefix = "palisade:bench:$$:"
timeout_ms = 50
[challenge]
secret = "bench-secret-0123456789abcdef"
[[limit]]
name = "ip"
key = "ip"
rate = "1000/s"
burst = 50
store = "$1"
TOML
  if [ "$1" = redis ]; then echo "local_lease = ${LEASE:-0}"; fi
}

cat > "$work/nginx.conf" <<NGINX
worker_processes $SERVER_THREADS;
pid $work/nginx.pid;
error_log $work/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  limit_req_zone \$http_x_forwarded_for zone=z:20m rate=1000r/s;
  limit_req_status 429;
  server {
    listen 127.0.0.1:$PORT_NGINX;
    # empty_gif, not "return 200": return ends the request in the rewrite
    # phase, before limit_req's preaccess phase, so nginx would not limit at
    # all (checked: one client at 67k req/s got no 429 with return).
    location / { limit_req zone=z burst=50 nodelay; empty_gif; }
  }
}
NGINX

run_wrk() { # name url script [server pids, comma-separated: for PERF_STAT=1]
  local out cpu=""
  if [ "${WARMUP:-1s}" != 0 ]; then
    wrk -t"$WRK_THREADS" -c"$CONN" -d"${WARMUP:-1s}" -s "$3" "$2" >/dev/null
  fi
  if [ "${PERF_STAT:-0}" = 1 ] && [ -n "${4:-}" ]; then
    # The server's CPU time over the whole wrk run (all its threads), so
    # that a client-bound run still compares the servers' cost per request.
    perf stat -x, -e task-clock -p "$4" -o "$work/perf.csv" -- sleep "${DUR%s}" 2>/dev/null &
    local perf_pid=$!
    out=$(wrk -t"$WRK_THREADS" -c"$CONN" -d"${DUR}" --latency -s "$3" "$2")
    wait "$perf_pid" 2>/dev/null || true
    local ms n
    ms=$(awk -F, '/task-clock/ {print $1}' "$work/perf.csv")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    [ -n "$ms" ] && [ -n "$n" ] && cpu=$(awk -v ms="$ms" -v n="$n" 'BEGIN {printf "   server CPU %.2f us/req", ms * 1000 / n}')
  else
    out=$(wrk -t"$WRK_THREADS" -c"$CONN" -d"${DUR}" --latency -s "$3" "$2")
  fi
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  printf '%-34s %12s req/s   p50 %8s   p99 %8s   non-2xx %s%s\n' "$1" "$rps" "$p50" "$p99" "${non2xx:-0}" "$cpu"
}

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 not up" >&2; return 1; }

echo "# $(date -u +%FT%TZ) $(nproc) CPUs, wrk -t$WRK_THREADS -c$CONN -d$DUR (after a ${WARMUP:-1s} warm-up run), servers with $SERVER_THREADS threads/workers"
for round in $(seq "${ROUNDS:-1}"); do
  [ "${ROUNDS:-1}" -gt 1 ] && echo "## round $round"
  nginx -c "$work/nginx.conf" -p "$work"
  wait_port "$PORT_NGINX"
  nginx_pids=$(pgrep -d, -P "$(cat "$work/nginx.pid")" || true)
  run_wrk "nginx limit_req (memory)" "http://127.0.0.1:$PORT_NGINX/" "$work/auth.lua" "$nginx_pids"
  DUR=1s run_wrk "nginx, one client (expect 429s)" "http://127.0.0.1:$PORT_NGINX/" "$work/one.lua"
  kill "$(cat "$work/nginx.pid")"; rm -f "$work/nginx.pid"; sleep 0.5

  for store in ${STORES:-memory redis}; do
    policy "$store" > "$work/gate-$store.toml"
    # shellcheck disable=SC2086
    $GATE_BIN "$work/gate-$store.toml" "127.0.0.1:$PORT_GATE" "$SERVER_THREADS" 2>"$work/gate.err" &
    pids+=($!)
    wait_port "$PORT_GATE"
    run_wrk "gate forward-auth ($store)" "http://127.0.0.1:$PORT_GATE/v1/auth" "$work/auth.lua" "${pids[-1]}"
    [ "$store" = memory ] && DUR=1s run_wrk "gate, one client (expect 429s)" "http://127.0.0.1:$PORT_GATE/v1/auth" "$work/one.lua"
    if [ "$store" = redis ]; then
      run_wrk "gate forward-auth (redis, 64 hot, lease ${LEASE:-0})" "http://127.0.0.1:$PORT_GATE/v1/auth" "$work/hot.lua" "${pids[-1]}"
    fi
    run_wrk "gate POST /v1/decide ($store)" "http://127.0.0.1:$PORT_GATE/" "$work/decide.lua"
    kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
    sleep 0.5
  done
done
