# Sourced by bench/proxy.sh and bench/ingress.sh: the processes a benchmark
# starts, waits for and measures. Set BENCH (the script's name, for
# messages) and WORK (a temp dir: removed at exit) before sourcing.
# The proxies under test are registered with add_proxy, then started and
# stopped one at a time (start_proxy / stop_proxy; PROXY_PID is the running one).

PIDS=()
bench_cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# free_ports N: N free loopback ports, chosen by the kernel (released just before use).
free_ports() {
  node -e '
    const net = require("net"); const servers = [];
    (async () => {
      for (let i = 0; i < Number(process.argv[1]); i++) servers.push(await new Promise((r) => { const s = net.createServer().listen(0, "127.0.0.1", () => r(s)); }));
      console.log(servers.map((s) => s.address().port).join(" "));
      servers.forEach((s) => s.close());
    })();' "$1"
}

# wait_port PORT PID NAME: until 127.0.0.1:PORT accepts (exits the script if PID dies or 15 s pass).
wait_port() {
  for _ in $(seq 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "$BENCH: $3 did not listen on 127.0.0.1:$1" >&2
  tail -n 20 "$WORK"/*.out "$WORK"/*.log "$WORK"/*/*.log 2>/dev/null >&2 || true
  exit 1
}

# stop_pid PID: SIGTERM, up to 10 s to exit, then SIGKILL.
stop_pid() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# A measured process and its children (nginx's worker under its master).
process_tree() { echo "$1" $(ps -o pid= --ppid "$1" 2>/dev/null || true); }
# sum_over_tree PID FILE AWK: an awk program on /proc/<pid>/FILE, summed over the tree.
sum_over_tree() {
  local total=0 pid v
  for pid in $(process_tree "$1"); do
    v=$(awk "$3" "/proc/$pid/$2" 2>/dev/null) || v=0
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
# cpu_ticks PID: utime + stime (fields 14 and 15 of /proc/<pid>/stat; comm has no spaces for node, nginx or squid).
cpu_ticks() { sum_over_tree "$1" stat '{print $14 + $15}'; }
# sys_ticks PID: stime alone (field 15): the part of cpu_ticks spent in the kernel.
sys_ticks() { sum_over_tree "$1" stat '{print $15}'; }
# peak_rss_kib PID: VmHWM.
peak_rss_kib() { sum_over_tree "$1" status '/^VmHWM:/ {print $2}'; }

declare -A CMDS PORTS LABELS
ORDER=()
PROXY_PID=""
# add_proxy NAME PORT LABEL COMMAND...: a proxy to measure, listening on 127.0.0.1:PORT.
add_proxy() {
  local name=$1 port=$2 label=$3
  shift 3
  CMDS[$name]="$*"
  PORTS[$name]=$port
  LABELS[$name]=$label
  ORDER+=("$name")
}
start_proxy() { # NAME
  ${CMDS[$1]} >"$WORK/$1.out" 2>&1 &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  wait_port "${PORTS[$1]}" "$PROXY_PID" "$1"
}
stop_proxy() {
  stop_pid "$PROXY_PID"
  PROXY_PID=""
}
