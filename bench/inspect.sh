#!/usr/bin/env bash
# gatehouse inspect against the reflector (the floor) and gatehouse tunnel,
# measured the same way in one run, alternating (bench/lib/cpu-per-packet.sh):
# CPU time per packet at a fixed rate and the highest loss-free rate, with
# an allow-all policy and with a 1,000-rule policy (999 rules that do not
# match emu's flows: CIDR, port and TLS SNI rules, then allow). Then new
# flows per second with a verdict: flows of 3 packets (emu sends each flow's
# first packet in the first third of the run), at rising rates, the highest
# with < 1 % loss.
#
#   sudo bash bench/inspect.sh [--rate PPS] [--duration S] [--rounds N] [--sizes "128 1400"] [--no-search]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RATE=30000 DURATION=10 ROUNDS=2 SIZES="128 1400" SEARCH=${SEARCH:-10000:400000} SEARCH_S=${SEARCH_S:-2}
NEW_FLOW_RATES=${NEW_FLOW_RATES:-"10000 20000 30000 40000 60000"}
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --no-search) SEARCH=""; shift ;;
    *) echo "bench/inspect.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench/inspect.sh: needs root (namespaces)" >&2; exit 1; }
[ -f dist/src/cli/main.js ] || npm run build >/dev/null

GH="node $ROOT/dist/src/cli/main.js"
# shellcheck source=bench/lib/two-hosts.sh
source "$ROOT/bench/lib/two-hosts.sh"
# shellcheck source=bench/lib/cpu-per-packet.sh
source "$ROOT/bench/lib/cpu-per-packet.sh"

RULES=$(mktemp /tmp/gatehouse-1000-rules.XXXXXX.yaml)
trap 'rm -f "$RULES"; two_hosts_cleanup' EXIT
node -e '
  const out = ["default: deny", "rules:"];
  for (let i = 0; i < 999; i++) {
    const id = `r${i}`;
    if (i % 3 === 0) out.push(`  - { id: ${id}, action: drop, dst: "10.${i % 250}.${(i >> 3) % 250}.0/24" }`);
    else if (i % 3 === 1) out.push(`  - { id: ${id}, action: drop, protocol: tcp, dst_port: ${1000 + i} }`);
    else out.push(`  - { id: ${id}, action: allow, tls_sni: ".site${i}.example.com" }`);
  }
  out.push("  - { id: allow-rest, action: allow }");
  console.log(out.join("\n"));
' >"$RULES"

declare -A CMDS=(
  [echo]="$GH emu --echo --bind 192.0.2.2 --quiet"
  [tunnel]="$GH tunnel -c $ROOT/examples/hooks/passthrough.sh -r $ROOT/examples/hooks/passthrough.sh"
  [inspect-allow]="$GH inspect --policy $ROOT/examples/policies/allow-all.yaml"
  [inspect-1000]="$GH inspect --policy $RULES"
)
ORDER=(echo tunnel inspect-allow inspect-1000)

emu() { ip netns exec "$NS_G" $GH emu --bind 192.0.2.1 --target 192.0.2.2 --enis 4 --flows 1000 --v6 20 --sports 64 --seed 1 --json --quiet "$@" | tail -n 1; }

echo "machine: $(nproc) cores, $(uname -r), node $(node -v); fixed rate $RATE pps for $DURATION s, $ROUNDS rounds alternating"
measure_cpu_per_packet

echo "new flows per second with a verdict (flows of 3 packets, 128 bytes, < 1 % loss):"
for name in inspect-allow inspect-1000; do
  best=0
  for r in $NEW_FLOW_RATES; do
    start_appliance "${CMDS[$name]}" "$name"
    out=$(ip netns exec "$NS_G" $GH emu --bind 192.0.2.1 --target 192.0.2.2 --enis 4 --flows "$r" --count $((3 * r)) \
          --rate "$r" --sports 64 --seed 2 --json --quiet | tail -n 1)
    stop_appliance
    loss=$(json_field "$out" loss_pct)
    echo "  $name: $r new flows/s -> loss $loss %"
    if node -e 'process.exit(Number(process.argv[1]) < 1 ? 0 : 1)' "$loss"; then best=$r; else break; fi
  done
  echo "  $name: highest $best new flows/s"
done
