#!/usr/bin/env bash
# Counts the instructions the proxy executes per request (user space), for nginx proxy_pass
# and a Gatehouse gateway on the same route, with callgrind. Unlike throughput on a shared
# machine, the count is the same from run to run (within ~1%), so it shows what a change to
# the request path saves. Kernel time (the socket calls) is not counted: bench/run.sh shows it.
#
#   bench/instructions.sh                        # the release build, N=4000 requests
#   BASELINE_BIN=/path/to/older/gatehouse bench/instructions.sh
#
# Needs valgrind and nginx (Debian: apt-get install valgrind nginx-light) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-4000}"
CONNS="${CONNS:-4}"
. bench/lib.sh
require_tools "apt-get install valgrind nginx-light curl" valgrind callgrind_control nginx curl python3

# A client sending N requests over CONNS kept-alive connections, one at a time on each.
cat > "$work/load.py" <<'PY'
import socket, sys, threading
port, path, n, conns = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
key = sys.argv[5] if len(sys.argv) > 5 else ""
extra = ("API-Key: %s\r\n" % key) if key else ""
req = ("GET %s HTTP/1.1\r\nHost: localhost:%d\r\nUser-Agent: load\r\nAccept: */*\r\n%s\r\n" % (path, port, extra)).encode()
failed = []
def run():
    c = socket.create_connection(("127.0.0.1", port)); f = c.makefile("rb")
    for _ in range(n // conns):
        c.sendall(req)
        if b" 200 " not in f.readline():
            failed.append(1)
        length = 0
        while True:
            h = f.readline()
            if h in (b"\r\n", b""):
                break
            if h.lower().startswith(b"content-length:"):
                length = int(h.split(b":")[1])
        f.read(length)
    c.close()
threads = [threading.Thread(target=run) for _ in range(conns)]
[t.start() for t in threads]; [t.join() for t in threads]
sys.exit(1 if failed else 0)
PY

wait_for() { for _ in $(seq 1 600); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "bench: $1 never answered" >&2; exit 1; }

# Instructions counted while N requests go to http://127.0.0.1:$port$path through process $pid.
count() { # pid, out-file prefix, port, path, key
  local pid="$1" out="$2" port="$3" path="$4" key="${5:-}"
  python3 "$work/load.py" "$port" "$path" 500 "$CONNS" $key   # warm-up
  callgrind_control -z "$pid" > /dev/null 2>&1
  python3 "$work/load.py" "$port" "$path" "$N" "$CONNS" $key
  callgrind_control -d "$pid" > /dev/null 2>&1
  local total
  for _ in $(seq 1 50); do
    total=$(cat "$out".* 2>/dev/null | awk '/^(summary|totals):/ {print $2}' | tail -1)
    [ -n "$total" ] && break; sleep 0.1
  done
  rm -f "$out".*
  echo $((total / N))
}

UP=$(free_port); NGX=$(free_port)
mkdir -p "$work/upstream" "$work/proxy"
cat > "$work/upstream/nginx.conf" <<CONF
worker_processes 1; pid $work/upstream/nginx.pid; error_log $work/upstream/error.log warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $work/upstream/b; proxy_temp_path $work/upstream/p;
  fastcgi_temp_path $work/upstream/f; uwsgi_temp_path $work/upstream/u; scgi_temp_path $work/upstream/s;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP; location / { return 200 'ok'; } } }
CONF
nginx -p "$work/upstream" -c "$work/upstream/nginx.conf" -g 'daemon off;' & pids+=($!)
# The reference proxy: one process (no master), so callgrind sees all of its work.
cat > "$work/proxy/nginx.conf" <<CONF
master_process off; worker_processes 1; pid $work/proxy/nginx.pid; error_log $work/proxy/error.log warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $work/proxy/b; proxy_temp_path $work/proxy/p;
  fastcgi_temp_path $work/proxy/f; uwsgi_temp_path $work/proxy/u; scgi_temp_path $work/proxy/s;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$UP; keepalive 128; }
  server { listen 127.0.0.1:$NGX; location /bench/ { proxy_pass http://backend/; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
valgrind --tool=callgrind --callgrind-out-file="$work/nginx.cg.%p" \
  nginx -p "$work/proxy" -c "$work/proxy/nginx.conf" -g 'daemon off;' 2> "$work/nginx.vg" & pids+=($!)
NGX_PID=$!
wait_for "http://127.0.0.1:$UP/"
wait_for "http://127.0.0.1:$NGX/bench/"
echo "instructions per request (user space, callgrind), $N requests over $CONNS connections"
printf '| proxy | path | instructions/request | vs nginx |\n|---|---|---|---|\n'
nginx_ir=$(count "$NGX_PID" "$work/nginx.cg" "$NGX" /bench/)
printf '| nginx proxy_pass | /bench/ | %s | 1.00× |\n' "$nginx_ir"
kill "$NGX_PID"

gateway() { # binary, label
  local bin="$1" label="$2" gw admin key
  gw=$(free_port); admin=$(free_port)
  valgrind --tool=callgrind --callgrind-out-file="$work/$label.cg.%p" \
    "$bin" gateway --listen "127.0.0.1:$gw" --admin-listen "127.0.0.1:$admin" --admin-password bench \
    --data-dir "$work/$label" > "$work/$label.log" 2>&1 & pids+=($!)
  local pid=$!
  wait_for "http://127.0.0.1:$gw/_gateway-health/ready"
  for spec in "bench|" "bench-policies|, \"policies\": [{\"name\": \"api-key-auth\"}, {\"name\": \"rate-limit\", \"params\": {\"requests\": 1000000000, \"window\": \"1h\"}}]"; do
    local name="${spec%%|*}" extra="${spec#*|}"
    curl -sf -u admin:bench -H 'content-type: application/json' "http://127.0.0.1:$admin/api/management/v1/rest-apis" -d "{
      \"apiVersion\": \"gatehouse.dev/v1\", \"kind\": \"RestApi\", \"metadata\": {\"name\": \"$name\"},
      \"spec\": {\"displayName\": \"$name\", \"context\": \"/$name\", \"upstream\": {\"main\": {\"url\": \"http://127.0.0.1:$UP\"}},
                 \"operations\": [{\"method\": \"GET\", \"path\": \"/*\"}]$extra}}" > /dev/null
  done
  key=$(curl -sf -u admin:bench "http://127.0.0.1:$admin/api/management/v1/rest-apis/bench-policies/api-keys" \
    -d '{"displayName": "bench"}' | sed 's/.*"apiKey":"\([^"]*\)".*/\1/')
  wait_for "http://127.0.0.1:$gw/bench/"
  local a b
  a=$(count "$pid" "$work/$label.cg" "$gw" /bench/)
  b=$(count "$pid" "$work/$label.cg" "$gw" /bench-policies/ "$key")
  printf '| %s, no policies | /bench/ | %s | %.2f× |\n' "$label" "$a" "$(awk -v a="$a" -v n="$nginx_ir" 'BEGIN {print a / n}')"
  printf '| %s, api-key-auth + rate-limit | /bench-policies/ | %s | %.2f× |\n' "$label" "$b" "$(awk -v a="$b" -v n="$nginx_ir" 'BEGIN {print a / n}')"
  kill "$pid"
}
gateway "$BIN" gatehouse
[ -n "${BASELINE_BIN:-}" ] && gateway "$BASELINE_BIN" baseline
exit 0
