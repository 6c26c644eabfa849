#!/usr/bin/env bash
# Loads one route side by side: the upstream directly, through nginx (proxy_pass with upstream
# keep-alive) and through a Gatehouse gateway (no policies, then api-key-auth + rate-limit), over
# plain HTTP and over HTTPS (nginx and the gateway terminating TLS with the same certificate).
# Prints requests/s, mean and p99 latency, each figure as a ratio of nginx's on the same scheme,
# and the proxy's CPU time per request (user and kernel, from /proc while wrk runs): on a noisy
# machine the CPU per request moves much less than the throughput.
# HTTPS=0 leaves the HTTPS paths out.
#
#   bench/run.sh                      # defaults: wrk -t1 -c64 -d8s, 3 rounds
#   DURATION=15s CONNS=64 ROUNDS=5 bench/run.sh
#   BASELINE_BIN=/path/to/older/gatehouse bench/run.sh   # also load an older build, in the same rounds
#
# The machine is noisy, so the four paths run in turn, ROUNDS times, and each figure is the
# median of its rounds.
#
# Needs wrk and nginx (Debian: apt-get install wrk nginx-light) and builds the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-8s}"
CONNS="${CONNS:-64}"
THREADS="${THREADS:-1}"
ROUNDS="${ROUNDS:-3}"
NGINX_WORKERS="${NGINX_WORKERS:-2}"

HTTPS="${HTTPS:-1}"

. bench/lib.sh
require_tools "apt-get install wrk nginx-light curl openssl" wrk nginx curl openssl
UP=$(free_port); NGX=$(free_port); NGXS=$(free_port)
# One certificate for both TLS terminators (ECDSA P-256, the common choice for a public site).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null

nginx_conf() { # name, workers, server block
  mkdir -p "$work/$1"
  cat > "$work/$1/nginx.conf" <<CONF
worker_processes $2;
pid $work/$1/nginx.pid;
error_log $work/$1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/$1/body; proxy_temp_path $work/$1/proxy;
  fastcgi_temp_path $work/$1/fcgi; uwsgi_temp_path $work/$1/uwsgi; scgi_temp_path $work/$1/scgi;
  keepalive_requests 1000000;
  $3
}
CONF
}

# The upstream: nginx answering 200 itself.
nginx_conf upstream 1 "server { listen 127.0.0.1:$UP; location / { return 200 'ok'; } }"
nginx -p "$work/upstream" -c "$work/upstream/nginx.conf" -g 'daemon off;' & pids+=($!)
# The reference proxy.
nginx_conf proxy "$NGINX_WORKERS" "upstream backend { server 127.0.0.1:$UP; keepalive 128; }
  server { listen 127.0.0.1:$NGX; location /bench/ { proxy_pass http://backend/; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }
  server { listen 127.0.0.1:$NGXS ssl; ssl_certificate $work/tls.crt; ssl_certificate_key $work/tls.key;
    location /bench/ { proxy_pass http://backend/; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
nginx -p "$work/proxy" -c "$work/proxy/nginx.conf" -g 'daemon off;' & pids+=($!)
NGINX_MASTER=$!
# A gateway of binary $1 with the two benchmark APIs; sets GW (traffic port) and KEY.
start_gateway() {
  local bin="$1" name="$2" admin
  GW=$(free_port); GWS=$(free_port); admin=$(free_port)
  "$bin" gateway --listen "127.0.0.1:$GW" --admin-listen "127.0.0.1:$admin" --admin-password bench \
    --tls-listen "127.0.0.1:$GWS" --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" \
    --data-dir "$work/$name" > "$work/$name.log" 2>&1 & pids+=($!)
  GW_PID=$!
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$GW/_gateway-health/ready" && break; sleep 0.1; done
  curl -sf -u admin:bench -H 'content-type: application/json' "http://127.0.0.1:$admin/api/management/v1/rest-apis" -d "{
    \"apiVersion\": \"gatehouse.dev/v1\", \"kind\": \"RestApi\", \"metadata\": {\"name\": \"bench\"},
    \"spec\": {\"displayName\": \"bench\", \"context\": \"/bench\", \"upstream\": {\"main\": {\"url\": \"http://127.0.0.1:$UP\"}},
               \"operations\": [{\"method\": \"GET\", \"path\": \"/*\"}]}}" > /dev/null
  curl -sf -u admin:bench -H 'content-type: application/json' "http://127.0.0.1:$admin/api/management/v1/rest-apis" -d "{
    \"apiVersion\": \"gatehouse.dev/v1\", \"kind\": \"RestApi\", \"metadata\": {\"name\": \"bench-policies\"},
    \"spec\": {\"displayName\": \"bench-policies\", \"context\": \"/bench-policies\", \"upstream\": {\"main\": {\"url\": \"http://127.0.0.1:$UP\"}},
               \"operations\": [{\"method\": \"GET\", \"path\": \"/*\"}],
               \"policies\": [{\"name\": \"api-key-auth\"}, {\"name\": \"rate-limit\", \"params\": {\"requests\": 1000000000, \"window\": \"1h\"}}]}}" > /dev/null
  KEY=$(curl -sf -u admin:bench "http://127.0.0.1:$admin/api/management/v1/rest-apis/bench-policies/api-keys" \
    -d '{"displayName": "bench"}' | sed 's/.*"apiKey":"\([^"]*\)".*/\1/')
  curl -sf -o /dev/null "http://127.0.0.1:$GW/bench/" || { echo "$name: route not served" >&2; cat "$work/$name.log" >&2; exit 1; }
  curl -sf -o /dev/null -H "API-Key: $KEY" "http://127.0.0.1:$GW/bench-policies/" || { echo "$name: policy route not served" >&2; exit 1; }
}

for url in "http://127.0.0.1:$UP/" "http://127.0.0.1:$NGX/bench/"; do
  for _ in $(seq 1 100); do curl -sf -o /dev/null "$url" && break; sleep 0.1; done
done
start_gateway "$BIN" gateway
labels=("direct upstream" "nginx proxy_pass" "gatehouse, no policies" "gatehouse, api-key-auth + rate-limit")
[ "$HTTPS" = 1 ] && labels+=("nginx proxy_pass, https" "gatehouse, no policies, https" "gatehouse, api-key-auth + rate-limit, https")
if [ -n "${BASELINE_BIN:-}" ]; then
  BGW_MAIN=$GW; BGWS_MAIN=$GWS; BKEY_MAIN=$KEY; BPID_MAIN=$GW_PID
  start_gateway "$BASELINE_BIN" baseline
  BASE_GW=$GW; BASE_KEY=$KEY; BASE_PID=$GW_PID
  GW=$BGW_MAIN; GWS=$BGWS_MAIN; KEY=$BKEY_MAIN; GW_PID=$BPID_MAIN
  labels+=("baseline build, no policies" "baseline build, api-key-auth + rate-limit")
fi

# User and kernel clock ticks of processes $@ (every thread).
ticks() {
  local u=0 s=0 a b task
  for p in "$@"; do
    for task in /proc/"$p"/task/*; do
      read -r a b < <(cut -d' ' -f14,15 "$task/stat" 2>/dev/null || echo "0 0")
      u=$((u + a)); s=$((s + b))
    done
  done
  echo "$u $s"
}

run() { # label, "pids of the proxy" (or -), url, extra wrk args...
  local label="$1" procs="$2" url="$3"; shift 3
  wrk -t"$THREADS" -c"$CONNS" -d2s "$@" "$url" > /dev/null   # warm-up
  local out u1 s1 u2 s2
  read -r u1 s1 < <(ticks $procs)
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" "$url")
  read -r u2 s2 < <(ticks $procs)
  local rps mean p99 errors reqs cpu
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  mean=$(awk '/^    Latency/ {print $2}' <<<"$out")
  p99=$(awk '/^ +99%/ {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx or 3xx responses/ {print $5}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  if [ "$procs" = "-" ]; then cpu="-"; else
    cpu=$(awk -v u=$((u2 - u1)) -v s=$((s2 - s1)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { printf "%.1f / %.1f", u / hz * 1e6 / n, s / hz * 1e6 / n }')
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$rps" "$mean" "$p99" "${errors:-0}" "$cpu"
}

results="$work/results.tsv"
: > "$results"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  ngx_workers=$(pgrep -P "$NGINX_MASTER" | tr '\n' ' ')
  run "direct upstream" - "http://127.0.0.1:$UP/" >> "$results"
  run "nginx proxy_pass" "$ngx_workers" "http://127.0.0.1:$NGX/bench/" >> "$results"
  run "gatehouse, no policies" "$GW_PID" "http://127.0.0.1:$GW/bench/" >> "$results"
  run "gatehouse, api-key-auth + rate-limit" "$GW_PID" "http://127.0.0.1:$GW/bench-policies/" -H "API-Key: $KEY" >> "$results"
  if [ "$HTTPS" = 1 ]; then
    run "nginx proxy_pass, https" "$ngx_workers" "https://127.0.0.1:$NGXS/bench/" >> "$results"
    run "gatehouse, no policies, https" "$GW_PID" "https://127.0.0.1:$GWS/bench/" >> "$results"
    run "gatehouse, api-key-auth + rate-limit, https" "$GW_PID" "https://127.0.0.1:$GWS/bench-policies/" -H "API-Key: $KEY" >> "$results"
  fi
  if [ -n "${BASELINE_BIN:-}" ]; then
    run "baseline build, no policies" "$BASE_PID" "http://127.0.0.1:$BASE_GW/bench/" >> "$results"
    run "baseline build, api-key-auth + rate-limit" "$BASE_PID" "http://127.0.0.1:$BASE_GW/bench-policies/" -H "API-Key: $BASE_KEY" >> "$results"
  fi
done

# Median of each path's rounds (by requests/s), keeping that round's latencies.
medians="$work/medians.tsv"
for label in "${labels[@]}"; do
  awk -F'\t' -v l="$label" '$1 == l' "$results" | sort -t$'\t' -k2,2g | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)'
done > "$medians"

nginx_rps=$(awk -F'\t' '$1 == "nginx proxy_pass" {print $2}' "$medians")
nginx_tls_rps=$(awk -F'\t' '$1 == "nginx proxy_pass, https" {print $2}' "$medians")
echo "wrk -t$THREADS -c$CONNS -d$DURATION, median of $ROUNDS rounds, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
printf '| path | requests/s | vs nginx (same scheme) | mean latency | p99 latency | non-2xx | proxy CPU µs/request, user / kernel |\n|---|---|---|---|---|---|---|\n'
awk -F'\t' -v n="$nginx_rps" -v s="${nginx_tls_rps:-1}" \
  '{ base = ($1 ~ /, https$/) ? s : n; printf "| %s | %.0f | %.2f× | %s | %s | %s | %s |\n", $1, $2, $2 / base, $3, $4, $5, $6 }' "$medians"
echo
echo "all rounds (requests/s):"
awk -F'\t' '{ printf "  %-46s %8.0f   cpu %s\n", $1, $2, $6 }' "$results"
