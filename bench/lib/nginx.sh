# nginx configurations for bench/ingress.sh (sourced). Both run in the
# foreground (daemon off) with one worker, everything under a work dir, so
# the script owns their processes and files.

# nginx_common WORKDIR NAME: the lines every instance shares.
nginx_common() {
  local dir=$1 name=$2
  cat <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $dir/$name.pid;
error_log $dir/$name.error.log warn;
events { worker_connections 4096; }
EOF
}

# nginx_temp_paths DIR: every temp path under DIR (the Debian defaults may not be writable).
nginx_temp_paths() {
  local dir=$1
  mkdir -p "$dir"
  cat <<EOF
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
EOF
}

# write_nginx_upstream WORKDIR PORT: a static server for /1k and /10m (files made here).
write_nginx_upstream() {
  local dir=$1 port=$2
  mkdir -p "$dir/www"
  head -c 1024 /dev/zero | tr '\0' 'x' >"$dir/www/1k"
  head -c $((10 * 1024 * 1024)) /dev/urandom >"$dir/www/10m"
  chmod -R a+rX "$dir/www"
  {
    nginx_common "$dir" upstream
    echo "http {"
    nginx_temp_paths "$dir/tmp-upstream"
    cat <<EOF
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$port;
    root $dir/www;
  }
}
EOF
  } >"$dir/upstream.conf"
}

# write_nginx_proxy WORKDIR PORT UPSTREAM_PORT: proxy_pass with a keep-alive upstream pool,
# no signing, an access log to a file (as gatehouse writes one).
write_nginx_proxy() {
  local dir=$1 port=$2 upstream=$3
  {
    nginx_common "$dir" proxy
    echo "http {"
    nginx_temp_paths "$dir/tmp-proxy"
    cat <<EOF
  access_log $dir/nginx-access.log combined;
  keepalive_requests 1000000;
  upstream bench_upstream {
    server 127.0.0.1:$upstream;
    keepalive 64;
    keepalive_timeout 50s;
  }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      # Stream large answers through memory buffers, never a temp file (as gatehouse does).
      proxy_max_temp_file_size 0;
    }
  }
}
EOF
  } >"$dir/proxy.conf"
}
