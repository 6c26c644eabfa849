#!/usr/bin/env bash
# The cost of the LLM path: one upstream (nginx answering a fixed OpenAI-style completion, and a
# fixed SSE stream with usage) loaded side by side directly, through a Gatehouse REST API route
# (plain forwarding, the baseline) and through an LLM provider (model read, usage read on the
# way, metrics recorded), plain and streamed. Prints requests/s and latency, with the LLM
# paths as a ratio of the REST path. Then measures the delay the gateway adds to each streamed
# chunk (bench/llm_stream_delay.py).
#
#   bench/llm.sh                      # defaults: wrk -t1 -c64 -d8s, 3 rounds
#   DURATION=15s ROUNDS=5 bench/llm.sh
#
# Needs wrk and nginx (Debian: apt-get install wrk nginx-light) and builds the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-8s}"
CONNS="${CONNS:-64}"
THREADS="${THREADS:-1}"
ROUNDS="${ROUNDS:-3}"

. bench/lib.sh
require_tools "apt-get install wrk nginx-light curl" wrk nginx curl python3
UP=$(free_port); GW=$(free_port); ADMIN=$(free_port)

COMPLETION='{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, how can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":10,"total_tokens":22}}'
CHUNK='data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"word "},"finish_reason":null}],"usage":null}\n\n'
STREAM=""
for _ in $(seq 1 10); do STREAM+="$CHUNK"; done
STREAM+='data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":10,"total_tokens":22}}\n\ndata: [DONE]\n\n'

mkdir -p "$work/upstream"
cat > "$work/upstream/nginx.conf" <<CONF
worker_processes 1;
pid $work/upstream/nginx.pid;
error_log $work/upstream/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/upstream/body; proxy_temp_path $work/upstream/proxy;
  fastcgi_temp_path $work/upstream/fcgi; uwsgi_temp_path $work/upstream/uwsgi; scgi_temp_path $work/upstream/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$UP;
    location /v1/chat/completions { default_type application/json; return 200 '$COMPLETION'; }
    location /v1/stream/chat/completions { default_type text/event-stream; return 200 '$STREAM'; }
  }
}
CONF
nginx -p "$work/upstream" -c "$work/upstream/nginx.conf" -g 'daemon off;' & pids+=($!)

"$BIN" gateway --listen "127.0.0.1:$GW" --admin-listen "127.0.0.1:$ADMIN" --admin-password bench \
  --data-dir "$work/gw" > "$work/gw.log" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$GW/_gateway-health/ready" && break; sleep 0.1; done
mgmt() { curl -sf -u admin:bench -H 'content-type: application/json' "http://127.0.0.1:$ADMIN/api/management/v1/$1" -d "$2" > /dev/null; }
mgmt rest-apis "{\"apiVersion\": \"gatehouse.dev/v1\", \"kind\": \"RestApi\", \"metadata\": {\"name\": \"rest\"},
  \"spec\": {\"displayName\": \"rest\", \"context\": \"/rest\", \"upstream\": {\"main\": {\"url\": \"http://127.0.0.1:$UP/v1\"}}}}"
mgmt llm-providers "{\"apiVersion\": \"gatehouse.dev/v1\", \"kind\": \"LlmProvider\", \"metadata\": {\"name\": \"llm\"},
  \"spec\": {\"displayName\": \"llm\", \"template\": \"openai\", \"context\": \"/llm\",
             \"upstream\": {\"url\": \"http://127.0.0.1:$UP/v1\", \"auth\": {\"type\": \"api-key\", \"value\": \"sk-bench\"}}}}"

cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in ten words please."}]}'
LUA
cat > "$work/stream.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello in ten words please."}]}'
LUA
# Without include_usage: the gateway asks for usage and hides it, rewriting every chunk.
cat > "$work/stream-hidden.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello in ten words please."}]}'
LUA
for p in "/v1/chat/completions" ; do
  for _ in $(seq 1 100); do curl -sf -o /dev/null -X POST "http://127.0.0.1:$UP$p" && break; sleep 0.1; done
done
curl -sf -o /dev/null -X POST -d '{}' "http://127.0.0.1:$GW/rest/chat/completions" || { echo "rest route not served" >&2; cat "$work/gw.log" >&2; exit 1; }
curl -sf -o /dev/null -X POST -d '{"model":"m"}' "http://127.0.0.1:$GW/llm/chat/completions" || { echo "llm route not served" >&2; cat "$work/gw.log" >&2; exit 1; }

run() { # label, url, script
  wrk -t"$THREADS" -c"$CONNS" -d2s -s "$3" "$2" > /dev/null
  local out
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$3" "$2")
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" \
    "$(awk '/^Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '/^    Latency/ {print $2}' <<<"$out")" \
    "$(awk '/^ +99%/ {print $2}' <<<"$out")" \
    "$(awk '/Non-2xx or 3xx responses/ {print $5}' <<<"$out")"
}
labels=("direct upstream, completion" "gatehouse REST route, completion" "gatehouse LLM provider, completion"
        "gatehouse REST route, stream" "gatehouse LLM provider, stream"
        "gatehouse LLM provider, stream, usage hidden")
results="$work/results.tsv"; : > "$results"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  run "${labels[0]}" "http://127.0.0.1:$UP/v1/chat/completions" "$work/post.lua" >> "$results"
  run "${labels[1]}" "http://127.0.0.1:$GW/rest/chat/completions" "$work/post.lua" >> "$results"
  run "${labels[2]}" "http://127.0.0.1:$GW/llm/chat/completions" "$work/post.lua" >> "$results"
  run "${labels[3]}" "http://127.0.0.1:$GW/rest/stream/chat/completions" "$work/stream.lua" >> "$results"
  run "${labels[4]}" "http://127.0.0.1:$GW/llm/stream/chat/completions" "$work/stream.lua" >> "$results"
  run "${labels[5]}" "http://127.0.0.1:$GW/llm/stream/chat/completions" "$work/stream-hidden.lua" >> "$results"
done
medians="$work/medians.tsv"
for label in "${labels[@]}"; do
  awk -F'\t' -v l="$label" '$1 == l' "$results" | sort -t$'\t' -k2,2g | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)'
done > "$medians"
rest_c=$(awk -F'\t' '$1 == "gatehouse REST route, completion" {print $2}' "$medians")
rest_s=$(awk -F'\t' '$1 == "gatehouse REST route, stream" {print $2}' "$medians")
echo "wrk -t$THREADS -c$CONNS -d$DURATION, median of $ROUNDS rounds, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
printf '| path | requests/s | vs REST route | mean latency | p99 latency | non-2xx |\n|---|---|---|---|---|---|\n'
awk -F'\t' -v c="$rest_c" -v s="$rest_s" '{ base = ($1 ~ /stream/) ? s : c; printf "| %s | %.0f | %.2f× | %s | %s | %s |\n", $1, $2, $2 / base, $3, $4, ($5 == "" ? 0 : $5) }' "$medians"
echo
python3 bench/llm_stream_delay.py --gateway "http://127.0.0.1:$GW" --admin "http://127.0.0.1:$ADMIN"
