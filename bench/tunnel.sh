#!/usr/bin/env bash
# gatehouse tunnel against the reflector (the floor) and, with --peer, any
# other GWLB target command (e.g. a gwlbtun binary), measured the same way in
# one run, alternating:
#   - CPU time per packet of the appliance process at a fixed rate (utime +
#     stime from /proc/<pid>/stat over the run, divided by packets), the
#     figure to compare on a shared, noisy machine;
#   - the highest loss-free rate (< 1 % loss, emu --search), which swings.
# Topology: two namespaces made here, emu in one (192.0.2.1), the appliance in
# the other (192.0.2.2) behind a veth pair (MTU 9001). Appliances that use
# hooks get examples/hooks/passthrough.sh (tc mirred gwi -> gwo).
#
#   sudo bash bench/tunnel.sh [--peer "CMD"] [--rate PPS] [--duration S] [--rounds N] [--sizes "128 1400"]
#   e.g. --peer "/opt/gwlbtun/build/gwlbtun -c $PWD/examples/hooks/passthrough.sh"
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RATE=30000 DURATION=10 ROUNDS=2 SIZES="128 1400" PEER="" SEARCH=${SEARCH:-10000:400000} SEARCH_S=${SEARCH_S:-2}
while [ $# -gt 0 ]; do
  case "$1" in
    --peer) PEER=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --no-search) SEARCH=""; shift ;;
    *) echo "bench/tunnel.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench/tunnel.sh: needs root (namespaces, TUN devices)" >&2; exit 1; }
[ -f dist/src/cli/main.js ] || npm run build >/dev/null

GH="node $ROOT/dist/src/cli/main.js"
# shellcheck source=bench/lib/two-hosts.sh
source "$ROOT/bench/lib/two-hosts.sh"

declare -A CMDS=(
  [echo]="$GH emu --echo --bind 192.0.2.2 --quiet"
  [gatehouse]="$GH tunnel -c $ROOT/examples/hooks/passthrough.sh -r $ROOT/examples/hooks/passthrough.sh"
)
ORDER=(echo gatehouse)
if [ -n "$PEER" ]; then CMDS[peer]=$PEER; ORDER+=(peer); fi

# The same seed every run: the same 4 endpoints, created once by the warm-up run.
# 64 source ports, as GWLB varies its port per flow (spreads over --udpthreads).
emu() { ip netns exec "$NS_G" $GH emu --bind 192.0.2.1 --target 192.0.2.2 --enis 4 --flows 1000 --v6 20 --sports 64 --seed 1 --json --quiet "$@" | tail -n 1; }
# shellcheck source=bench/lib/cpu-per-packet.sh
source "$ROOT/bench/lib/cpu-per-packet.sh"

echo "machine: $(nproc) cores, $(uname -r), node $(node -v); fixed rate $RATE pps for $DURATION s, $ROUNDS rounds alternating"
measure_cpu_per_packet
