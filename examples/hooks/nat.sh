#!/usr/bin/env bash
# gatehouse tunnel / gwlbtun hook: two-arm NAT.
#
# The appliance is the endpoint's way out to the internet: packets from the
# GWLB endpoint arrive on gwi-<X>, are forwarded out of a second interface
# ($EGRESS_IF, default eth1) with their source rewritten to that interface's
# address (MASQUERADE, IPv4 and IPv6), and answers come back on $EGRESS_IF,
# are translated back and return to the endpoint through gwo-<X> (and GWLB).
# The NATed traffic itself leaves the appliance directly, not through GWLB:
# that is "two-arm".
#
#   EGRESS_IF=eth1 gatehouse tunnel -c nat.sh -r nat.sh
#   called as: nat.sh CREATE|DESTROY gwi-<X> gwo-<X> <ENI id, 17 hex digits>
#
# How answers find their endpoint: connections that start on gwi-<X> get a
# conntrack mark (connmark) of their own per endpoint; packets arriving on
# $EGRESS_IF copy that mark onto themselves, and "ip rule fwmark" sends
# marked packets to a table whose default route is gwo-<X>. So two endpoints
# never receive each other's answers, even from the same server.
# Mark and table number: 0x10000000 + the ENI id's low 28 bits (as route.sh).
# If other software uses packet marks (kube-proxy, some VPNs), check that it
# masks its own bits only.
#
# Assumes the main routing table sends internet-bound traffic out of
# $EGRESS_IF (its default route), and that the instance's source/destination
# check is off (aws ec2 modify-instance-attribute --no-source-dest-check).
#
# Every iptables rule carries the comment "gatehouse-<ENI>", so DESTROY
# removes exactly what CREATE added for this endpoint (and CREATE checks
# before adding, so running it twice adds nothing). DESTROY leaves
# ip_forward on: it is host-wide. Needs: iptables/ip6tables (with the
# conntrack, connmark, comment and MASQUERADE modules), ip, sysctl;
# CAP_NET_ADMIN.
set -euo pipefail

usage() {
  echo "usage: [EGRESS_IF=eth1] $0 CREATE|DESTROY gwi-<X> gwo-<X> <ENI id in hex>" >&2
  exit 64
}
[[ $# -eq 4 ]] || usage
action=$1 gwi=$2 gwo=$3 eni=$4
[[ $action == CREATE || $action == DESTROY ]] || usage
[[ $gwi =~ ^gwi-[0-9A-Za-z]{1,11}$ && $gwo =~ ^gwo-[0-9A-Za-z]{1,11}$ ]] || usage
[[ $eni =~ ^[0-9a-f]{1,17}$ ]] || usage
egress=${EGRESS_IF:-eth1}
[[ $egress =~ ^[^[:space:]/]{1,15}$ ]] || usage

low=0000000$eni
table=$((0x10000000 + 16#${low: -7}))
mark=$(printf '0x%08x' "$table")
tag=gatehouse-$eni
pref=1000

# add_rule <iptables|ip6tables> <table> <chain> <rule...>: appends unless already there.
add_rule() {
  local cmd=$1 tbl=$2 chain=$3
  shift 3
  if ! "$cmd" -w -t "$tbl" -C "$chain" "$@" -m comment --comment "$tag" 2>/dev/null; then
    "$cmd" -w -t "$tbl" -A "$chain" "$@" -m comment --comment "$tag"
  fi
}

# remove_rules <iptables|ip6tables> <table>: deletes every rule tagged for this endpoint.
remove_rules() {
  local cmd=$1 tbl=$2 line
  local -a rule
  # -S prints rules as the arguments that add them; "-A" -> "-D" deletes one.
  "$cmd" -w -t "$tbl" -S | { grep -F -e "--comment $tag " -e "--comment \"$tag\"" || true; } |
    while read -r line; do
      read -r -a rule <<<"$line"
      rule[0]=-D
      "$cmd" -w -t "$tbl" "${rule[@]}"
    done
}

del_rules() {
  while ip "$1" rule del fwmark "$mark" lookup "$table" pref "$pref" 2>/dev/null; do :; done
}

case $action in
CREATE)
  echo "nat: $gwi -> MASQUERADE out of $egress, answers back via $gwo (mark/table $mark), endpoint vpce-$eni"
  if ! ip link show dev "$egress" >/dev/null 2>&1; then
    echo "nat: egress interface $egress does not exist; set EGRESS_IF" >&2
    exit 1
  fi
  if command -v udevadm >/dev/null; then udevadm settle --timeout=5 || true; fi # gwlbtun issue #3
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.ipv6.conf.all.forwarding=1
  sysctl -qw "net.ipv4.conf.${gwi}.rp_filter=0"
  for cmd in iptables ip6tables; do
    # New connections from the endpoint: remember which endpoint (connmark).
    add_rule "$cmd" mangle PREROUTING -i "$gwi" -m conntrack --ctstate NEW -j CONNMARK --set-mark "$mark"
    # Answers arriving on the egress arm: copy the connmark onto the packet for "ip rule fwmark".
    add_rule "$cmd" mangle PREROUTING -i "$egress" -m connmark --mark "$mark" -j CONNMARK --restore-mark
    add_rule "$cmd" nat POSTROUTING -o "$egress" -m connmark --mark "$mark" -j MASQUERADE
    # Forwarding, should the FORWARD policy be DROP: out from the endpoint, and answers back.
    add_rule "$cmd" filter FORWARD -i "$gwi" -o "$egress" -j ACCEPT
    add_rule "$cmd" filter FORWARD -i "$egress" -o "$gwo" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  done
  for family in -4 -6; do
    ip "$family" route replace default dev "$gwo" table "$table"
    del_rules "$family"
    ip "$family" rule add fwmark "$mark" lookup "$table" pref "$pref"
  done
  ;;
DESTROY)
  echo "nat: removing NAT for $gwi / $gwo, endpoint vpce-$eni"
  for cmd in iptables ip6tables; do
    for tbl in mangle nat filter; do remove_rules "$cmd" "$tbl"; done
  done
  for family in -4 -6; do
    del_rules "$family"
    ip "$family" route flush table "$table" 2>/dev/null || true
  done
  ;;
esac
