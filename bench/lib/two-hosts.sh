# Sourced by bench scripts: two network namespaces joined by a veth pair
# (MTU 9001), the load generator's side 192.0.2.1 ($NS_G), the appliance's
# 192.0.2.2 ($NS_A), removed with everything running in them on exit.
# Also: start_appliance CMD NAME / stop_appliance, cpu_ticks PID, json_field.
SUF=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
NS_G=ghb-$SUF-g
NS_A=ghb-$SUF-a
APID=""
two_hosts_cleanup() {
  [ -n "$APID" ] && kill -TERM "$APID" 2>/dev/null && sleep 1
  for ns in $NS_G $NS_A; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap two_hosts_cleanup EXIT
ip netns add "$NS_G"
ip netns add "$NS_A"
ip -n "$NS_G" link set lo up
ip -n "$NS_A" link set lo up
ip -n "$NS_G" link add veth-a type veth peer name veth-g netns "$NS_A"
ip -n "$NS_G" link set veth-a mtu 9001 up
ip -n "$NS_A" link set veth-g mtu 9001 up
ip -n "$NS_G" addr add 192.0.2.1/24 dev veth-a
ip -n "$NS_A" addr add 192.0.2.2/24 dev veth-g

# start_appliance "CMD" NAME: runs CMD in $NS_A (exec'd, so $APID is its pid), waits for UDP 6081.
start_appliance() {
  ip netns exec "$NS_A" bash -c "exec $1" >"/tmp/bench-$2.log" 2>&1 &
  APID=$!
  for _ in $(seq 50); do
    ip netns exec "$NS_A" ss -Hlun 'sport = :6081' | grep -q . && return 0
    sleep 0.1
  done
  echo "bench: $2 did not bind UDP 6081; its log:" >&2
  cat "/tmp/bench-$2.log" >&2
  exit 1
}
stop_appliance() {
  kill -TERM "$APID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$APID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$APID" 2>/dev/null || true
  wait "$APID" 2>/dev/null || true
  APID=""
}
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
json_field() { node -e 'const r=JSON.parse(process.argv[1]); console.log(r[process.argv[2]])' "$1" "$2"; }
