#!/usr/bin/env bash
# gatehouse proxy against Squid (Debian's `squid`), the same load through each
# in one run, alternating, all on loopback:
#   - HTTP keep-alive requests/s (1 KiB answers from nginx serving a static
#     file, or from Node without nginx) with p50/p99 latency;
#   - CONNECT tunnels/s (connect, CONNECT, one 64-byte round trip, close) and
#     p99; then the proxy's CPU time per tunnel at a FIXED rate of tunnels,
#     once with those 64 bytes and once with a TLS ClientHello instead (what
#     gatehouse's fronting check reads; Squid and the floor pass it on);
#   - MB/s through one tunnel (a TCP source behind it);
#   - CPU time per request at a FIXED rate (utime + stime of the proxy process
#     from /proc/<pid>/stat over the requests done), the figure to compare on
#     a shared, noisy machine, with its p99; for both CPU figures also the
#     kernel's part (stime), what no proxy's own code can remove;
#   - the proxy's peak RSS (VmHWM).
# When wrk is installed (Debian: apt-get install wrk), the keep-alive load
# is also sent by it: a C load generator on one thread needs a fraction of
# the CPU the Node client does, so the proxies' rates, not the client's,
# decide that row on a 2-core machine (the Node client alone tops out near
# 22k requests/s straight to the upstream).
# With --floors, two more columns for plain HTTP only (neither does CONNECT):
# nginx's proxy_pass (a C proxy, one worker, access log on) and
# bench/lib/bare-forwarder.ts (Node's socket layer with no HTTP library and
# no checks): what forwarding costs below any policy, in C and in Node; and
# one for tunnels only: bench/lib/connect-floor.c (built here with cc), a
# C epoll CONNECT forwarder with no lookup, policy or log, what two TCP
# connections per tunnel cost before any proxy's own work.
# Both proxies get the same allowlist: one upstream name (localhost) and its
# ports; gatehouse also gets `allow_addresses: [127.0.0.1/32]`, since its SSRF
# defences deny loopback otherwise. Both write an access log to a temp file.
#
#   bash bench/proxy.sh [--only squid|gatehouse] [--connections N] [--duration S]
#                       [--rate RPS] [--tunnel-rate TPS] [--rate-duration S]
#                       [--rounds N] [--floors]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CONNECTIONS=32 TUNNEL_CONNECTIONS=8 DURATION=3 RATE=2000 TUNNEL_RATE=1000 RATE_DURATION=10 ROUNDS=2 ONLY="" FLOORS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --tunnel-rate) TUNNEL_RATE=$2; shift 2 ;;
    --rate-duration) RATE_DURATION=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --floors) FLOORS=1; shift ;;
    *) echo "bench/proxy.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -f dist/bench/lib/http-load.js ] && [ -f dist/bench/lib/bare-forwarder.js ] && [ -f dist/src/cli/main.js ] || npx tsc -p tsconfig.json >/dev/null || true
[ -f dist/bench/lib/http-load.js ] || { echo "bench/proxy.sh: dist/bench/lib/http-load.js missing (npx tsc -p tsconfig.json)" >&2; exit 1; }

LOAD="node $ROOT/dist/bench/lib/http-load.js"
WRK=$(command -v wrk || true)
[ -n "$WRK" ] || echo "bench/proxy.sh: wrk not installed (Debian: apt-get install wrk); keep-alive load from the Node client only" >&2
GH="node $ROOT/dist/src/cli/main.js"
WORK=$(mktemp -d /tmp/gatehouse-bench-proxy.XXXXXX)
chmod 0777 "$WORK" # Squid started as root writes its logs as the "proxy" user
BENCH=bench/proxy.sh
# shellcheck source=bench/lib/processes.sh
source "$ROOT/bench/lib/processes.sh"

read -r HTTP_PORT NODE_HTTP_PORT ECHO_PORT SOURCE_PORT SQUID_PORT GH_PORT GH_HEALTH NGINX_PORT BARE_PORT CONNECT_FLOOR_PORT < <(free_ports 10)

# ---- the upstreams
# The HTTP answers (1 KiB) come from nginx serving a static file when it is
# installed: the Node upstream takes as much CPU per request as a fast
# proxy, and on two cores that CPU is taken from the proxy under test. The
# tunnels' echo and source servers (and HTTP without nginx) are Node's.
if command -v nginx >/dev/null; then
  # shellcheck source=bench/lib/nginx.sh
  source "$ROOT/bench/lib/nginx.sh"
  write_nginx_upstream "$WORK/upstream" "$HTTP_PORT"
  nginx -c "$WORK/upstream/upstream.conf" -p "$WORK/upstream" >"$WORK/upstream.out" 2>&1 &
  PIDS+=($!)
  wait_port "$HTTP_PORT" "$!" "the nginx upstream"
else
  echo "bench/proxy.sh: nginx not installed; the HTTP upstream is Node's" >&2
  NODE_HTTP_PORT=$HTTP_PORT
fi
$LOAD upstreams --http-port "$NODE_HTTP_PORT" --echo-port "$ECHO_PORT" --source-port "$SOURCE_PORT" >"$WORK/upstreams.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$WORK/upstreams.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$WORK/upstreams.out" || { echo "bench/proxy.sh: upstreams did not start: $(cat "$WORK/upstreams.out")" >&2; exit 1; }

# ---- the proxies
# What each column carries: "http" (keep-alive and fixed-rate requests), "tunnels" (CONNECT).
declare -A CARRIES
if [ "$ONLY" != gatehouse ]; then
  if command -v squid >/dev/null; then
    # shellcheck source=bench/lib/squid.sh
    source "$ROOT/bench/lib/squid.sh"
    write_squid_conf "$WORK/squid" "$SQUID_PORT" localhost "$HTTP_PORT $ECHO_PORT $SOURCE_PORT"
    CARRIES[squid]="http tunnels"
    add_proxy squid "$SQUID_PORT" "squid $(squid -v | sed -n 's/.*Version \([^ ]*\).*/\1/p' | head -n 1)" squid -N -f "$WORK/squid/squid.conf"
  else
    echo "bench/proxy.sh: squid not installed (Debian: apt-get install squid); measuring gatehouse alone" >&2
  fi
fi
if [ "$ONLY" != squid ]; then
  if help=$($GH proxy --help 2>&1) && ! grep -q "not in this release" <<<"$help"; then
    cat >"$WORK/proxy.yaml" <<EOF
version: 1
default: deny
connect_ports: [$ECHO_PORT, $SOURCE_PORT]
rules:
  - id: bench-upstream
    action: allow
    host: localhost
    port: [$HTTP_PORT, $ECHO_PORT, $SOURCE_PORT]
    allow_addresses: [127.0.0.1/32]
EOF
    GH_ARGS="proxy --policy $WORK/proxy.yaml --listen 127.0.0.1:$GH_PORT --health-port $GH_HEALTH"
    # Log like Squid does, when the command offers an access log.
    if grep -q -- "--access-log" <<<"$help"; then GH_ARGS="$GH_ARGS --access-log $WORK/gatehouse-access.log"; fi
    # Most tunnels here carry plain TCP (echo, source), not TLS: Squid does not look inside; let gatehouse
    # pass them too. The ClientHello run's SNI (localhost) is checked against the CONNECT host as always.
    if grep -q -- "--non-tls-connect" <<<"$help"; then GH_ARGS="$GH_ARGS --non-tls-connect allow"; fi
    CARRIES[gatehouse]="http tunnels"
    add_proxy gatehouse "$GH_PORT" gatehouse "$GH $GH_ARGS"
  else
    echo "bench/proxy.sh: 'gatehouse proxy --help' does not work yet; measuring squid alone" >&2
  fi
fi
if [ "$FLOORS" = 1 ]; then
  if command -v nginx >/dev/null; then
    write_nginx_proxy "$WORK" "$NGINX_PORT" "$HTTP_PORT"
    CARRIES[floor-nginx]=http
    add_proxy floor-nginx "$NGINX_PORT" "nginx (floor)" nginx -c "$WORK/proxy.conf" -p "$WORK"
  else
    echo "bench/proxy.sh: nginx not installed; no nginx floor" >&2
  fi
  CARRIES[floor-node]=http
  add_proxy floor-node "$BARE_PORT" "bare node (floor)" node "$ROOT/dist/bench/lib/bare-forwarder.js" "$BARE_PORT"
  if command -v cc >/dev/null && cc -O2 -o "$WORK/connect-floor" "$ROOT/bench/lib/connect-floor.c"; then
    CARRIES[floor-connect]=tunnels
    add_proxy floor-connect "$CONNECT_FLOOR_PORT" "C CONNECT (floor)" "$WORK/connect-floor" "$CONNECT_FLOOR_PORT"
  else
    echo "bench/proxy.sh: no C compiler (cc); no CONNECT floor" >&2
  fi
fi
[ ${#ORDER[@]} -gt 0 ] || { echo "bench/proxy.sh: nothing to measure" >&2; exit 1; }

# The wrk request: absolute-form through a proxy, as the Node client sends it.
cat >"$WORK/proxy.lua" <<EOF
wrk.method = "GET"
wrk.path = "http://localhost:$HTTP_PORT/1k"
wrk.headers["Host"] = "localhost:$HTTP_PORT"
EOF
# wrk_http PROXY: {"rps", "p99_ms", "errors"} of one wrk run (one thread) through PROXY.
WRK_JS=$(cat <<'EOF'
const out = require('fs').readFileSync(0, 'utf8');
const unit = { us: 1e-3, ms: 1, s: 1e3, m: 6e4 };
const p99 = /^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
const bad = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
console.log(JSON.stringify({
  rps: rps ? Number(rps[1]) : null,
  p99_ms: p99 ? Number(p99[1]) * unit[p99[2]] : null,
  errors: (bad ? Number(bad[1]) : 0) + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
}));
EOF
)
wrk_http() {
  [ -n "$WRK" ] || { echo '{}'; return; }
  "$WRK" -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/proxy.lua" "http://$1" | node -e "$WRK_JS"
}

RESULTS=$WORK/results.jsonl
HZ=$(getconf CLK_TCK)
echo "machine: $(nproc) cores, $(uname -r), node $(node -v); ${#ORDER[@]} proxies, $ROUNDS rounds alternating;" \
  "$CONNECTIONS connections for ${DURATION} s; fixed rates $RATE req/s and $TUNNEL_RATE tunnels/s for $RATE_DURATION s each"
# with_cpu CMD...: CMD's JSON line as {"load": ..., "cpu_ticks": n, "sys_ticks": n},
# the running proxy's CPU ticks (all, and the kernel's) over it.
with_cpu() {
  local c0 s0 out
  c0=$(cpu_ticks "$PROXY_PID") s0=$(sys_ticks "$PROXY_PID")
  out=$("$@")
  printf '{"load":%s,"cpu_ticks":%d,"sys_ticks":%d}' "$out" $(($(cpu_ticks "$PROXY_PID") - c0)) $(($(sys_ticks "$PROXY_PID") - s0))
}
for round in $(seq "$ROUNDS"); do
  for name in "${ORDER[@]}"; do
    proxy=127.0.0.1:${PORTS[$name]}
    start_proxy "$name"
    http='{}' wrk='{}' tunnels='{}' stream='{}' fixed='{}' fixed_tunnels='{}' fixed_hellos='{}'
    if [[ " ${CARRIES[$name]} " == *" http "* ]]; then
      $LOAD http --proxy "$proxy" --url "http://localhost:$HTTP_PORT/1k" --connections 4 --seconds 1 >/dev/null # warm-up
      http=$($LOAD http --proxy "$proxy" --url "http://localhost:$HTTP_PORT/1k" --connections "$CONNECTIONS" --seconds "$DURATION")
      wrk=$(wrk_http "$proxy")
    fi
    if [[ " ${CARRIES[$name]} " == *" tunnels "* ]]; then
      tunnels=$($LOAD connect --proxy "$proxy" --target "localhost:$ECHO_PORT" --connections "$TUNNEL_CONNECTIONS" --seconds "$DURATION")
      stream=$($LOAD stream --proxy "$proxy" --target "localhost:$SOURCE_PORT" --seconds "$DURATION")
      fixed_tunnels=$(with_cpu $LOAD connect --proxy "$proxy" --target "localhost:$ECHO_PORT" --connections "$TUNNEL_CONNECTIONS" --seconds "$RATE_DURATION" --rate "$TUNNEL_RATE")
      fixed_hellos=$(with_cpu $LOAD connect --proxy "$proxy" --target "localhost:$ECHO_PORT" --connections "$TUNNEL_CONNECTIONS" --seconds "$RATE_DURATION" --rate "$TUNNEL_RATE" --client-hello)
    fi
    if [[ " ${CARRIES[$name]} " == *" http "* ]]; then
      fixed=$(with_cpu $LOAD http --proxy "$proxy" --url "http://localhost:$HTTP_PORT/1k" --connections "$CONNECTIONS" --seconds "$RATE_DURATION" --rate "$RATE")
    fi
    rss=$(peak_rss_kib "$PROXY_PID")
    stop_proxy
    printf '{"proxy":"%s","round":%d,"http":%s,"wrk":%s,"connect":%s,"stream":%s,"fixed":%s,"fixed_connect":%s,"fixed_hello":%s,"hz":%d,"peak_rss_kib":%d}\n' \
      "$name" "$round" "$http" "$wrk" "$tunnels" "$stream" "$fixed" "$fixed_tunnels" "$fixed_hellos" "$HZ" "$rss" >>"$RESULTS"
    echo "  round $round: $name done" >&2
  done
done

# ---- the table: the median over rounds of each figure, one column per proxy
TABLE_JS=$(cat <<'EOF'
const fs = require('fs');
const [file, ...names] = process.argv.slice(1);
const labels = process.env.LABELS_TSV.split('\t').filter(Boolean);
const runs = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
// Microseconds of CPU (ticks of `kind`) per tunnel or request of a with_cpu run; null when it did not run.
const perUnit = (r, run, kind, unit) => (run.load?.[unit] ? ((run[kind] / r.hz) * 1e6) / run.load[unit] : null);
const median = (xs) => { const s = xs.filter((x) => x !== null && Number.isFinite(x)).sort((a, b) => a - b); return s.length ? s[Math.floor((s.length - 1) / 2)] : null; };
const figures = [
  ['HTTP keep-alive req/s', (r) => r.http.rps, 0],
  ['  p50 ms', (r) => r.http.p50_ms, 2],
  ['  p99 ms', (r) => r.http.p99_ms, 2],
  ['  errors', (r) => r.http.errors, 0],
  ['same load from wrk: req/s', (r) => r.wrk.rps ?? null, 0],
  ['  p99 ms', (r) => r.wrk.p99_ms ?? null, 2],
  ['  errors', (r) => r.wrk.errors ?? null, 0],
  ['CONNECT tunnels/s', (r) => r.connect.tunnels_per_s, 0],
  ['  p99 ms', (r) => r.connect.p99_ms, 2],
  ['  errors', (r) => r.connect.errors, 0],
  ['one tunnel MB/s', (r) => r.stream.mb_per_s, 1],
  ['fixed rate: tunnels/s done', (r) => r.fixed_connect.load?.tunnels_per_s, 0],
  ['  CPU us/tunnel', (r) => perUnit(r, r.fixed_connect, 'cpu_ticks', 'tunnels'), 1],
  ['    of it kernel', (r) => perUnit(r, r.fixed_connect, 'sys_ticks', 'tunnels'), 1],
  ['  p99 ms', (r) => r.fixed_connect.load?.p99_ms, 2],
  ['  errors', (r) => r.fixed_connect.load?.errors, 0],
  ['  with a ClientHello: CPU us', (r) => perUnit(r, r.fixed_hello, 'cpu_ticks', 'tunnels'), 1],
  ['    of it kernel', (r) => perUnit(r, r.fixed_hello, 'sys_ticks', 'tunnels'), 1],
  ['    p99 ms', (r) => r.fixed_hello.load?.p99_ms, 2],
  ['    errors', (r) => r.fixed_hello.load?.errors, 0],
  [`fixed rate: req/s done`, (r) => r.fixed.load?.rps, 0],
  ['  CPU us/request', (r) => perUnit(r, r.fixed, 'cpu_ticks', 'requests'), 1],
  ['    of it kernel', (r) => perUnit(r, r.fixed, 'sys_ticks', 'requests'), 1],
  ['  p99 ms', (r) => r.fixed.load?.p99_ms, 2],
  ['  errors', (r) => r.fixed.load?.errors, 0],
  ['peak RSS MiB', (r) => r.peak_rss_kib / 1024, 1],
];
const width = 19;
console.log(''.padEnd(26) + labels.map((l) => l.padStart(width)).join(''));
for (const [title, get, digits] of figures) {
  const cells = names.map((n) => {
    const m = median(runs.filter((r) => r.proxy === n).map(get));
    return (m === null ? '-' : m.toFixed(digits)).padStart(width);
  });
  console.log(title.padEnd(26) + cells.join(''));
}
EOF
)
LABELS_TSV=$(for n in "${ORDER[@]}"; do printf '%s\t' "${LABELS[$n]}"; done) node -e "$TABLE_JS" "$RESULTS" "${ORDER[@]}"
