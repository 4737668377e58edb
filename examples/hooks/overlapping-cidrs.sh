#!/usr/bin/env bash
# gatehouse tunnel / gwlbtun hook: endpoints with overlapping CIDRs.
#
# One appliance fleet often serves GWLB endpoints in several VPCs that use
# the same addresses (10.0.0.0/16 everywhere). Two things must then stay
# apart per endpoint:
#  - routing: a packet from endpoint A must go back out of A's gwo-<X>, even
#    though B has a host with the same address. A routing table per
#    endpoint, chosen by "ip rule iif gwi-<X>", whose default route is
#    gwo-<X> (as route.sh);
#  - connection tracking: 10.0.1.5:40000 -> 203.0.113.9:443 from A and the
#    very same 5-tuple from B are different connections. Without care
#    conntrack merges them (and a stateful firewall then lets B's packets
#    ride on A's state, or drops them as invalid). Each endpoint's packets
#    get a conntrack zone of their own in the raw table, before conntrack
#    sees them, so equal tuples from different endpoints never meet.
# GWLB sends both directions of an endpoint's flows in through the same
# gwi-<X>, so zoning by input interface covers both directions.
#
#   gatehouse tunnel -c overlapping-cidrs.sh -r overlapping-cidrs.sh
#   called as: overlapping-cidrs.sh CREATE|DESTROY gwi-<X> gwo-<X> <ENI id, 17 hex digits>
#
# Derived from the ENI id: table 0x10000000 + its low 28 bits (as route.sh);
# conntrack zone 1 + (its low 16 bits mod 65535) (zone 0 is everyone's
# default). Two endpoints sharing a table are refused; two sharing a zone
# only share conntrack, as without this script.
#
# CREATE twice is fine; DESTROY removes the rules, the table and the
# iptables rules tagged "gatehouse-<ENI>". ip_forward stays on (host-wide).
# Needs: ip, iptables/ip6tables (raw table, CT target, comment), sysctl;
# CAP_NET_ADMIN.
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
zone=$((16#${low: -4} % 65535 + 1))
tag=gatehouse-$eni
pref=1000

add_rule() { # add_rule <iptables|ip6tables> <table> <chain> <rule...>: appends unless already there
  local cmd=$1 tbl=$2 chain=$3
  shift 3
  if ! "$cmd" -w -t "$tbl" -C "$chain" "$@" -m comment --comment "$tag" 2>/dev/null; then
    "$cmd" -w -t "$tbl" -A "$chain" "$@" -m comment --comment "$tag"
  fi
}

remove_rules() { # remove_rules <iptables|ip6tables> <table>: deletes every rule tagged for this endpoint
  local cmd=$1 tbl=$2 line
  local -a rule
  "$cmd" -w -t "$tbl" -S | { grep -F -e "--comment $tag " -e "--comment \"$tag\"" || true; } |
    while read -r line; do
      read -r -a rule <<<"$line"
      rule[0]=-D
      "$cmd" -w -t "$tbl" "${rule[@]}"
    done
}

del_rules() {
  while ip "$1" rule del iif "$gwi" lookup "$table" pref "$pref" 2>/dev/null; do :; done
}

case $action in
CREATE)
  echo "overlapping-cidrs: $gwi -> table $table -> $gwo, conntrack zone $zone, endpoint vpce-$eni"
  for family in -4 -6; do
    other=$(ip "$family" rule show lookup "$table" | grep -v -F "iif $gwi " || true)
    if [[ -n $other ]]; then
      echo "overlapping-cidrs: table $table is already used by another rule: $other" >&2
      exit 1
    fi
  done
  if command -v udevadm >/dev/null; then udevadm settle --timeout=5 || true; fi # gwlbtun issue #3
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.ipv6.conf.all.forwarding=1
  sysctl -qw "net.ipv4.conf.${gwi}.rp_filter=0"
  for cmd in iptables ip6tables; do
    add_rule "$cmd" raw PREROUTING -i "$gwi" -j CT --zone "$zone"
  done
  for family in -4 -6; do
    ip "$family" route replace default dev "$gwo" table "$table"
    del_rules "$family"
    ip "$family" rule add iif "$gwi" lookup "$table" pref "$pref"
  done
  ;;
DESTROY)
  echo "overlapping-cidrs: removing table $table and zone $zone for $gwi / $gwo, endpoint vpce-$eni"
  for cmd in iptables ip6tables; do remove_rules "$cmd" raw; done
  for family in -4 -6; do
    del_rules "$family"
    ip "$family" route flush table "$table" 2>/dev/null || true
  done
  ;;
esac
