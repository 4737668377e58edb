#!/usr/bin/env bash
# gatehouse tunnel / gwlbtun hook: passthrough.
#
# Every packet that arrives from the GWLB endpoint on gwi-<X> is sent straight
# back out of gwo-<X>, unchanged, before the kernel's IP stack sees it: a
# "bump in the wire" that inspects nothing. Use it to check the GWLB path end
# to end, or as the base of a tc/eBPF-only appliance.
#
#   gatehouse tunnel -c passthrough.sh -r passthrough.sh
#   called as: passthrough.sh CREATE|DESTROY gwi-<X> gwo-<X> <ENI id, 17 hex digits>
#
# Why tc and not routing: an ingress qdisc with a match-all u32 filter and a
# mirred *redirect* hands each packet to gwo-<X> without routing, so
# rp_filter, ip_forward, iptables and routes do not matter. gwlbtun's own
# example uses "mirred egress mirror", which sends a *copy* and lets the
# original continue into the stack, where it is dropped, or forwarded a second
# time if ip_forward is on; "redirect" steals the packet, so there is exactly
# one copy. rp_filter is turned off anyway, so that adding iptables/routing
# later (after removing the filter) does not silently drop packets
# (gwlbtun issues #3, #22, #23).
#
# CREATE twice is fine (the qdisc is rebuilt); DESTROY removes the qdisc and
# with it the filter. Needs: tc (iproute2), sysctl; CAP_NET_ADMIN.
set -euo pipefail

usage() {
  echo "usage: $0 CREATE|DESTROY gwi-<X> gwo-<X> <ENI id in hex>" >&2
  exit 64
}
[[ $# -eq 4 ]] || usage
action=$1 gwi=$2 gwo=$3 eni=$4
[[ $action == CREATE || $action == DESTROY ]] || usage
[[ $gwi =~ ^gwi-[0-9A-Za-z]{1,11}$ && $gwo =~ ^gwo-[0-9A-Za-z]{1,11}$ ]] || usage
[[ $eni =~ ^[0-9a-f]{1,17}$ ]] || usage

case $action in
CREATE)
  echo "passthrough: $gwi -> $gwo for endpoint vpce-$eni"
  # Wait for udev to finish with the new interfaces: on systemd hosts it
  # applies sysctl.d (rp_filter=2 on Ubuntu/AL2023) shortly after they
  # appear, which would undo what we set (gwlbtun issue #3).
  if command -v udevadm >/dev/null; then udevadm settle --timeout=5 || true; fi
  sysctl -qw "net.ipv4.conf.${gwi}.rp_filter=0"
  # Rebuild from scratch so that CREATE twice leaves one filter, not two.
  tc qdisc del dev "$gwi" ingress 2>/dev/null || true
  tc qdisc add dev "$gwi" ingress
  # u32 "match u32 0 0" matches every packet (IPv4 and IPv6: protocol all).
  tc filter add dev "$gwi" parent ffff: protocol all prio 1 u32 match u32 0 0 \
    action mirred egress redirect dev "$gwo"
  ;;
DESTROY)
  echo "passthrough: removing $gwi -> $gwo for endpoint vpce-$eni"
  # The filter goes with the qdisc. Nothing to do if the interface is gone.
  tc qdisc del dev "$gwi" ingress 2>/dev/null || true
  ;;
esac
