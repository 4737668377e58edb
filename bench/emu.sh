#!/usr/bin/env bash
# The emulator's ceiling: `gatehouse emu` against `gatehouse emu --echo` on
# loopback (echo on 127.0.0.1, emu on 127.0.0.2). For 128- and 1400-byte
# inner packets it reports
#   - the highest loss-free rate (--search bisects for < 1 % loss), and
#   - CPU time per packet of both processes at a fixed load (steadier than
#     peak rates on a shared machine), for FIXED_PPS (default 100000).
# Needs root (the reflector replies through a raw socket). Traffic stays on
# loopback; every run is bounded by --duration.
#   bash bench/emu.sh            # defaults
#   TRIAL_S=3 FIXED_PPS=150000 bash bench/emu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
GH="node dist/src/cli/main.js"
PORT=${PORT:-16081}
TRIAL_S=${TRIAL_S:-2}
FIXED_PPS=${FIXED_PPS:-100000}
SEARCH=${SEARCH:-20000:400000}

[ "$(id -u)" = 0 ] || { echo "bench/emu.sh: needs root (raw socket for the reflector)"; exit 1; }
[ -f dist/src/cli/main.js ] || npm run build >/dev/null

$GH emu --echo --bind 127.0.0.1 --port "$PORT" --quiet >/tmp/gatehouse-bench-echo.log 2>&1 &
ECHO=$!
trap 'kill $ECHO 2>/dev/null; wait $ECHO 2>/dev/null || true' EXIT
sleep 0.5

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

echo "machine: $(nproc) cores, $(uname -r), node $(node -v)"
for SIZE in 128 1400; do
  out=$($GH emu --target 127.0.0.1 --port "$PORT" --bind 127.0.0.2 --size "$SIZE" --flows 1000 --enis 4 \
        --search "$SEARCH" --duration "$TRIAL_S" --json --quiet | tail -n 1)
  best=$(node -e 'const r=JSON.parse(process.argv[1]); console.log(r.best_pps)' "$out")
  echo "size $SIZE: highest loss-free rate (< 1 % loss): $best pps"

  e0=$(ticks $ECHO)
  out=$($GH emu --target 127.0.0.1 --port "$PORT" --bind 127.0.0.2 --size "$SIZE" --flows 1000 --enis 4 \
        --rate "$FIXED_PPS" --duration 5 --json --quiet | tail -n 1)
  e1=$(ticks $ECHO)
  node -e '
    const r = JSON.parse(process.argv[1]); const echoTicks = Number(process.argv[2]); const hz = Number(process.argv[3]);
    const echoUs = echoTicks / hz * 1e6 / Math.max(1, r.received);
    console.log(`size ${process.argv[4]} at ${process.argv[5]} pps: loss ${r.loss_pct} %, rx ${r.rx_pps} pps, ` +
      `p50 ${r.p50_us} us p99 ${r.p99_us} us, emu ${r.cpu_us_per_packet} us CPU/packet (sent+received), echo ${echoUs.toFixed(3)} us CPU/packet`);
  ' "$out" "$((e1 - e0))" "$HZ" "$SIZE" "$FIXED_PPS"
done
