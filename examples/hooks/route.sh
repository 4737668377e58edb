#!/usr/bin/env bash
# gatehouse tunnel / gwlbtun hook: route through the kernel.
#
# Packets from the GWLB endpoint arrive on gwi-<X>, go through the kernel's
# forwarding path (so iptables/nftables FORWARD rules, conntrack and tc see
# them: this is where a firewall appliance puts its policy) and leave through
# gwo-<X> back to GWLB, whatever their destination. A routing table of its
# own per endpoint, selected by "ip rule iif gwi-<X>", sends everything that
# came in on gwi-<X> out of gwo-<X>, so the main table (the instance's own
# routes) never decides where endpoint traffic goes, and two endpoints never
# send into each other's tunnel.
#
#   gatehouse tunnel -c route.sh -r route.sh
#   called as: route.sh CREATE|DESTROY gwi-<X> gwo-<X> <ENI id, 17 hex digits>
#
# The table number is derived from the ENI id: 0x10000000 + its low 28 bits,
# clear of the kernel's tables (253-255) and of small numbers admins use.
# Two endpoints whose ids share their low 28 bits would share a table; CREATE
# refuses that rather than mixing them.
#
# CREATE twice is fine; DESTROY removes the rules and the table. It leaves
# ip_forward on: it is host-wide and something else may rely on it.
# Endpoints with overlapping CIDRs whose flows must not meet in conntrack:
# see overlapping-cidrs.sh. Needs: ip (iproute2), sysctl; CAP_NET_ADMIN.
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

low=0000000$eni
table=$((0x10000000 + 16#${low: -7}))
pref=1000 # before the main table (32766)

# Deletes every "iif $gwi lookup $table" rule of one family (CREATE twice must not leave two).
del_rules() {
  while ip "$1" rule del iif "$gwi" lookup "$table" pref "$pref" 2>/dev/null; do :; done
}

case $action in
CREATE)
  echo "route: $gwi -> table $table -> $gwo for endpoint vpce-$eni"
  for family in -4 -6; do
    other=$(ip "$family" rule show lookup "$table" | grep -v -F "iif $gwi " || true)
    if [[ -n $other ]]; then
      echo "route: table $table is already used by another rule: $other" >&2
      exit 1
    fi
  done
  if command -v udevadm >/dev/null; then udevadm settle --timeout=5 || true; fi # gwlbtun issue #3
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.ipv6.conf.all.forwarding=1
  sysctl -qw "net.ipv4.conf.${gwi}.rp_filter=0"
  # The effective rp_filter is the larger of "all" and the interface's own.
  if [[ $(sysctl -n net.ipv4.conf.all.rp_filter) == 1 ]]; then
    echo "route: warning: net.ipv4.conf.all.rp_filter=1 (strict) still applies to $gwi; set it to 0 or 2" >&2
  fi
  for family in -4 -6; do
    ip "$family" route replace default dev "$gwo" table "$table"
    del_rules "$family"
    ip "$family" rule add iif "$gwi" lookup "$table" pref "$pref"
  done
  ;;
DESTROY)
  echo "route: removing table $table for $gwi / $gwo, endpoint vpce-$eni"
  for family in -4 -6; do
    # Rules name the interface, not its index: they outlive it, so remove them here.
    del_rules "$family"
    ip "$family" route flush table "$table" 2>/dev/null || true
  done
  ;;
esac
