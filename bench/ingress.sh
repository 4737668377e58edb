#!/usr/bin/env bash
# gatehouse ingress (SigV4 signing on) against nginx (Debian's, proxy_pass, no
# signing), side by side in one run, alternating rounds, all on loopback, both
# in front of the same upstream (a second nginx serving static files):
#   - CPU time per request at a FIXED rate, 1 KiB answers, keep-alive: utime +
#     stime of the proxy's processes from /proc/<pid>/stat over the requests
#     done (the figure to compare on a shared, noisy machine), with its p99;
#   - req/s and p99 at full load (1 KiB, keep-alive);
#   - MB/s of 10 MiB answers;
#   - the proxy's peak RSS (VmHWM).
# Both write an access log to a file. gatehouse signs every request with fixed
# credentials from the environment (no AWS endpoint is contacted).
#
#   bash bench/ingress.sh [--only nginx|gatehouse] [--connections N] [--duration S]
#                         [--rate RPS] [--rate-duration S] [--rounds N]
#                         [--with-unsigned] [--with-node-engine] [--with-distinct]
#                         [--with-request-ids] [--with-decided]
# --with-unsigned adds gatehouse with signing off (what signing costs);
# --with-distinct adds gatehouse signing requests that all differ (a query
# of their own each), so none reuses a head or a signature made for an
# earlier identical request: the relay routes and signs each itself;
# --with-request-ids: the same with a field of its own on each request too
# (X-Request-Id: the relay rewrites each request's fields itself);
# --with-decided: the same with a User-Agent of its own on each request (the
# log's, so each request is parsed, routed and signed in TypeScript);
# --with-node-engine adds gatehouse signing on node:http (--engine node), the
# engine plain-HTTP listeners had before the native relay.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CONNECTIONS=32 BIG_CONNECTIONS=4 DURATION=3 RATE=2000 RATE_DURATION=8 ROUNDS=2 ONLY="" WITH_UNSIGNED="" WITH_NODE="" WITH_DISTINCT="" WITH_IDS="" WITH_DECIDED=""
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --rate-duration) RATE_DURATION=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --with-unsigned) WITH_UNSIGNED=1; shift ;;
    --with-node-engine) WITH_NODE=1; shift ;;
    --with-distinct) WITH_DISTINCT=1; shift ;;
    --with-request-ids) WITH_IDS=1; shift ;;
    --with-decided) WITH_DECIDED=1; shift ;;
    *) echo "bench/ingress.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -f dist/bench/lib/reverse-load.js ] && [ -f dist/src/cli/main.js ] || npx tsc -p tsconfig.json >/dev/null || true
[ -f dist/bench/lib/reverse-load.js ] || { echo "bench/ingress.sh: dist/bench/lib/reverse-load.js missing (npx tsc -p tsconfig.json)" >&2; exit 1; }
command -v nginx >/dev/null || { echo "bench/ingress.sh: nginx is needed (Debian: apt-get install nginx)" >&2; exit 1; }

LOAD="node $ROOT/dist/bench/lib/reverse-load.js"
WORK=$(mktemp -d /tmp/gatehouse-bench-ingress.XXXXXX)
chmod 0755 "$WORK" # nginx workers (not root) read the static files under it
BENCH=bench/ingress.sh
# shellcheck source=bench/lib/processes.sh
source "$ROOT/bench/lib/processes.sh"

read -r UP_PORT NGINX_PORT GH_PORT GH_UNSIGNED_PORT GH_NODE_PORT GH_DISTINCT_PORT GH_IDS_PORT GH_DECIDED_PORT < <(free_ports 8)

# shellcheck source=bench/lib/nginx.sh
source "$ROOT/bench/lib/nginx.sh"
write_nginx_upstream "$WORK" "$UP_PORT"
write_nginx_proxy "$WORK" "$NGINX_PORT" "$UP_PORT"
nginx -c "$WORK/upstream.conf" -p "$WORK" >"$WORK/upstream.out" 2>&1 &
PIDS+=($!)
wait_port "$UP_PORT" "$!" "the upstream nginx"

cat >"$WORK/routes.yaml" <<EOF
routes:
  - host: bench.example.test
    upstream: { url: http://127.0.0.1:$UP_PORT }
    sign: true
EOF
sed 's/sign: true/sign: false/' "$WORK/routes.yaml" >"$WORK/routes-unsigned.yaml"

if [ "$ONLY" != gatehouse ]; then
  add_proxy nginx "$NGINX_PORT" "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///')" nginx -c "$WORK/proxy.conf" -p "$WORK"
fi
# add_gatehouse NAME PORT LABEL ROUTES [more ingress flags]: a gatehouse ingress column.
add_gatehouse() {
  local name=$1 port=$2 label=$3 routes=$4
  shift 4
  add_proxy "$name" "$port" "$label" node "$ROOT/dist/src/cli/main.js" ingress --routes "$routes" \
    --listen "127.0.0.1:$port" --health-port 0 --access-log "$WORK/$name-access.log" --region us-east-1 "$@"
}
if [ "$ONLY" != nginx ]; then
  add_gatehouse gatehouse "$GH_PORT" "gatehouse+SigV4" "$WORK/routes.yaml"
  [ -z "$WITH_UNSIGNED" ] || add_gatehouse gatehouse-unsigned "$GH_UNSIGNED_PORT" "gatehouse unsigned" "$WORK/routes-unsigned.yaml"
  [ -z "$WITH_DISTINCT" ] || add_gatehouse gatehouse-distinct "$GH_DISTINCT_PORT" "gh+SigV4 distinct" "$WORK/routes.yaml"
  [ -z "$WITH_IDS" ] || add_gatehouse gatehouse-ids "$GH_IDS_PORT" "gh+SigV4 ids" "$WORK/routes.yaml"
  [ -z "$WITH_DECIDED" ] || add_gatehouse gatehouse-decided "$GH_DECIDED_PORT" "gh+SigV4 decided" "$WORK/routes.yaml"
  [ -z "$WITH_NODE" ] || add_gatehouse gatehouse-node "$GH_NODE_PORT" "gh+SigV4 node:http" "$WORK/routes.yaml" --engine node
fi
# Fixed credentials for the signer (AWS's documentation example key): no AWS endpoint is asked.
export AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY AWS_EC2_METADATA_DISABLED=true

RESULTS=$WORK/results.jsonl
HZ=$(getconf CLK_TCK)
echo "machine: $(nproc) cores, $(uname -r), node $(node -v); ${#ORDER[@]} proxies, $ROUNDS rounds alternating;" \
  "1 KiB: fixed rate $RATE req/s for $RATE_DURATION s, full load $CONNECTIONS connections for ${DURATION} s; 10 MiB: $BIG_CONNECTIONS connections for ${DURATION} s"
for round in $(seq "$ROUNDS"); do
  for name in "${ORDER[@]}"; do
    target=127.0.0.1:${PORTS[$name]}
    start_proxy "$name"
    case "$name" in
      gatehouse-distinct) LOAD_ARGS=(--distinct) ;;
      gatehouse-ids) LOAD_ARGS=(--distinct --request-ids) ;;
      gatehouse-decided) LOAD_ARGS=(--distinct --request-ids --user-agents) ;;
      *) LOAD_ARGS=() ;;
    esac
    $LOAD --target "$target" --host bench.example.test --path /1k --connections 4 --seconds 1 "${LOAD_ARGS[@]}" >/dev/null # warm-up
    t0=$(cpu_ticks "$PROXY_PID")
    fixed=$($LOAD --target "$target" --host bench.example.test --path /1k --connections "$CONNECTIONS" --seconds "$RATE_DURATION" --rate "$RATE" "${LOAD_ARGS[@]}")
    t1=$(cpu_ticks "$PROXY_PID")
    full=$($LOAD --target "$target" --host bench.example.test --path /1k --connections "$CONNECTIONS" --seconds "$DURATION" "${LOAD_ARGS[@]}")
    big=$($LOAD --target "$target" --host bench.example.test --path /10m --connections "$BIG_CONNECTIONS" --seconds "$DURATION")
    rss=$(peak_rss_kib "$PROXY_PID")
    stop_proxy
    printf '{"proxy":"%s","round":%d,"fixed":%s,"full":%s,"big":%s,"cpu_ticks":%d,"hz":%d,"peak_rss_kib":%d}\n' \
      "$name" "$round" "$fixed" "$full" "$big" $((t1 - t0)) "$HZ" "$rss" >>"$RESULTS"
    echo "  round $round: $name done" >&2
  done
done

# The table: the median over rounds of each figure, one column per proxy, then the ratios the issue sets.
TABLE_JS=$(cat <<'EOF'
const fs = require('fs');
const [file, ...names] = process.argv.slice(1);
const labels = process.env.LABELS_TSV.split('\t').filter(Boolean);
const runs = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const median = (xs) => { const s = xs.filter((x) => x !== null && Number.isFinite(x)).sort((a, b) => a - b); return s.length ? s[Math.floor((s.length - 1) / 2)] : null; };
const figures = [
  ['fixed', 'fixed rate: req/s done', (r) => r.fixed.rps, 0],
  ['cpu', '  CPU us/request', (r) => (r.cpu_ticks / r.hz) * 1e6 / Math.max(1, r.fixed.requests), 1],
  ['', '  p99 ms', (r) => r.fixed.p99_ms, 2],
  ['', '  errors', (r) => r.fixed.errors, 0],
  ['rps', 'full load 1 KiB req/s', (r) => r.full.rps, 0],
  ['', '  p50 ms', (r) => r.full.p50_ms, 2],
  ['', '  p99 ms', (r) => r.full.p99_ms, 2],
  ['', '  errors', (r) => r.full.errors, 0],
  ['', '10 MiB answers MB/s', (r) => r.big.mb_per_s, 1],
  ['', '  p99 ms', (r) => r.big.p99_ms, 1],
  ['', '  errors', (r) => r.big.errors, 0],
  ['', 'peak RSS MiB', (r) => r.peak_rss_kib / 1024, 1],
];
const width = 20;
console.log(''.padEnd(26) + labels.map((l) => l.padStart(width)).join(''));
const kept = {};
for (const [key, title, get, digits] of figures) {
  const cells = names.map((n) => {
    const m = median(runs.filter((r) => r.proxy === n).map(get));
    if (key !== '') (kept[n] ??= {})[key] = m;
    return (m === null ? '-' : m.toFixed(digits)).padStart(width);
  });
  console.log(title.padEnd(26) + cells.join(''));
}
if (kept.nginx && kept.gatehouse) {
  const cpu = kept.gatehouse.cpu / kept.nginx.cpu;
  const rps = kept.gatehouse.rps / kept.nginx.rps;
  console.log(`gatehouse/nginx: CPU per request ${cpu.toFixed(2)}x (target <= 1.5x), full-load req/s ${rps.toFixed(2)}x (target >= 0.7x)`);
}
for (const n of names.filter((n) => n.startsWith('gatehouse-'))) {
  if (kept.nginx && kept[n]) console.log(`${n}/nginx: CPU per request ${(kept[n].cpu / kept.nginx.cpu).toFixed(2)}x, full-load req/s ${(kept[n].rps / kept.nginx.rps).toFixed(2)}x`);
}
EOF
)
LABELS_TSV=$(for n in "${ORDER[@]}"; do printf '%s\t' "${LABELS[$n]}"; done) node -e "$TABLE_JS" "$RESULTS" "${ORDER[@]}"
