#!/usr/bin/env bash
# Memory of the tunnel's flow table: RSS of `gatehouse tunnel` before and
# after FLOWS distinct flows (default 1,000,000, over 4 endpoints, 20 % IPv6)
# have each sent packets through it (passthrough hook), with the flow count
# the tunnel reports. Target: 1M flows in <= 200 MB RSS.
#   sudo bash bench/flows.sh [FLOWS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FLOWS=${1:-1000000}
RATE=${RATE:-100000}
[ "$(id -u)" = 0 ] || { echo "bench/flows.sh: needs root (namespaces, TUN devices)" >&2; exit 1; }
[ -f dist/src/cli/main.js ] || npm run build >/dev/null
GH="node $ROOT/dist/src/cli/main.js"
# shellcheck source=bench/lib/two-hosts.sh
source "$ROOT/bench/lib/two-hosts.sh"

HOOK=$ROOT/examples/hooks/passthrough.sh
start_appliance "$GH tunnel -c $HOOK -r $HOOK -p 8080 -j -i 600" tunnel-flows
ip netns exec "$NS_G" $GH emu --bind 192.0.2.1 --target 192.0.2.2 --enis 4 --flows 1000 --rate 1000 --duration 1 --quiet >/dev/null
before=$(rss_kib "$APID")
# Every flow sends at least one packet: count = FLOWS, round robin over the flows.
out=$(ip netns exec "$NS_G" $GH emu --bind 192.0.2.1 --target 192.0.2.2 --enis 4 --flows "$FLOWS" --v6 20 --size 80 \
      --rate "$RATE" --count "$FLOWS" --json --quiet | tail -n 1)
sleep 1
after=$(rss_kib "$APID")
flows=$(ip netns exec "$NS_A" curl -s http://127.0.0.1:8080/ | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    const doc = JSON.parse(s); console.log(doc.components.find((c) => c.name === "receive").details.flows_active); });')
echo "flows sent: $FLOWS (loss $(json_field "$out" loss_pct) %); flows in the tunnel's table: $flows"
echo "tunnel RSS: $((before / 1024)) MiB before, $((after / 1024)) MiB after; $(( (after - before) * 1024 / (flows > 0 ? flows : 1) )) bytes per flow"
stop_appliance
