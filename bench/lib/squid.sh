# Sourced by bench/proxy.sh. write_squid_conf DIR PORT DOMAIN "PORT..." writes
# DIR/squid.conf: a forward proxy on 127.0.0.1:PORT that allows exactly
# DOMAIN on the given ports (CONNECT too, to those ports only) from
# localhost, like gatehouse's bench policy; no cache, no pinger, no netdb,
# its access log (native format) and cache log in DIR. Run it with
# `squid -N -f DIR/squid.conf` (no daemon: one process to measure and kill).
write_squid_conf() {
  local dir=$1 port=$2 domain=$3 ports=$4
  mkdir -p "$dir"
  chmod 0777 "$dir" # squid started as root runs as the "proxy" user
  cat >"$dir/squid.conf" <<CONF
http_port 127.0.0.1:$port
acl bench_dst dstdomain $domain
acl bench_ports port $ports
http_access deny !bench_ports
http_access deny !bench_dst
http_access allow localhost
http_access deny all
cache deny all
cache_mem 8 MB
pinger_enable off
netdb_filename none
access_log stdio:$dir/access.log squid
cache_log $dir/cache.log
cache_store_log none
pid_filename $dir/squid.pid
coredump_dir $dir
shutdown_lifetime 0 seconds
max_filedescriptors 8192
CONF
}
