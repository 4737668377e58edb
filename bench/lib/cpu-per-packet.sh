# Sourced by bench scripts after two-hosts.sh. measure_cpu_per_packet runs,
# for each size in $SIZES, every appliance in ORDER (commands in CMDS) at
# $RATE pps for $DURATION s, $ROUNDS rounds alternating, and prints each
# one's CPU time per packet (utime + stime of its process from /proc, over
# the packets emu sent) against the first one's (the reflector), its loss
# per run and, unless SEARCH is empty, its highest loss-free rate
# (emu --search, < 1 % loss).
# Needs: GH (the CLI), emu() (emu with the flows and --json --quiet), ORDER, CMDS.
measure_cpu_per_packet() {
  local HZ SIZE name round t0 t1 out floor
  HZ=$(getconf CLK_TCK)
  floor=${ORDER[0]}
  declare -A CPU_SUM PK_SUM LOSS BEST
  for SIZE in $SIZES; do
    for name in "${ORDER[@]}"; do CPU_SUM[$name]=0; PK_SUM[$name]=0; LOSS[$name]=""; BEST[$name]=""; done
    for round in $(seq "$ROUNDS"); do
      for name in "${ORDER[@]}"; do
        start_appliance "${CMDS[$name]}" "$name"
        emu --rate 1000 --duration 1 --size "$SIZE" >/dev/null # warm-up: endpoints (and hooks) ready
        t0=$(cpu_ticks "$APID")
        out=$(emu --rate "$RATE" --duration "$DURATION" --size "$SIZE")
        t1=$(cpu_ticks "$APID")
        stop_appliance
        CPU_SUM[$name]=$((CPU_SUM[$name] + t1 - t0))
        PK_SUM[$name]=$((PK_SUM[$name] + $(json_field "$out" sent_good)))
        LOSS[$name]="${LOSS[$name]} $(json_field "$out" loss_pct)%"
      done
    done
    if [ -n "$SEARCH" ]; then
      for name in "${ORDER[@]}"; do
        start_appliance "${CMDS[$name]}" "$name"
        emu --rate 1000 --duration 1 --size "$SIZE" >/dev/null
        BEST[$name]=$(json_field "$(emu --search "$SEARCH" --duration "$SEARCH_S" --size "$SIZE")" best_pps)
        stop_appliance
      done
    fi
    echo "size $SIZE bytes:"
    for name in "${ORDER[@]}"; do
      node -e '
        const [name, ticks, pk, hz, floorTicks, floorPk, loss, best] = process.argv.slice(1);
        const us = (t, p) => (Number(t) / Number(hz)) * 1e6 / Math.max(1, Number(p));
        const mine = us(ticks, pk), floor = us(floorTicks, floorPk);
        console.log(`  ${name.padEnd(14)} CPU ${mine.toFixed(3)} us/packet (${(mine / floor).toFixed(2)}x the reflector), loss per run:${loss}` +
          (best ? `, highest loss-free rate ${best} pps` : ""));
      ' "$name" "${CPU_SUM[$name]}" "${PK_SUM[$name]}" "$HZ" "${CPU_SUM[$floor]}" "${PK_SUM[$floor]}" "${LOSS[$name]}" "${BEST[$name]}"
    done
  done
}
