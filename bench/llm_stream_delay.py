"""The delay a Gatehouse gateway adds to each streamed LLM chunk.

Starts an OpenAI-style upstream that sends a chunk every INTERVAL seconds, registers it as an LLM
provider on a running gateway (management API, user admin, password bench), then reads the same
stream directly and through the gateway (with and without the usage the gateway hides) and
prints, per path, the median and worst time from each chunk's send to its arrival.

    python3 bench/llm_stream_delay.py --gateway http://127.0.0.1:8080 --admin http://127.0.0.1:9090
"""

import argparse
import base64
import json
import socket
import statistics
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNKS = 40
INTERVAL = 0.02


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Each chunk leaves at once, as a provider sends it (no Nagle wait for an ACK).
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        include = (body.get("stream_options") or {}).get("include_usage") is True
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def send(data):
            raw = f"data: {data}\n\n".encode()
            self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            self.wfile.flush()

        for i in range(CHUNKS):
            chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m",
                     "choices": [{"index": 0, "delta": {"content": f"{time.time():.6f} "}}]}
            if include:
                chunk["usage"] = None
            send(json.dumps(chunk, separators=(",", ":")))
            time.sleep(INTERVAL)
        if include:
            send(json.dumps({"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [],
                             "usage": {"prompt_tokens": 1, "completion_tokens": CHUNKS, "total_tokens": CHUNKS + 1}}))
        send("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def delays(url, body):
    """Seconds from each chunk's send (stamped in its content) to its arrival."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    out = []
    with urllib.request.urlopen(req) as r:
        buf = b""
        while True:
            piece = r.read1(65536)
            if not piece:
                break
            now = time.time()
            buf += piece
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                data = event.decode().removeprefix("data: ")
                if data.startswith("{"):
                    c = json.loads(data)
                    if c.get("choices"):
                        out.append(now - float(c["choices"][0]["delta"]["content"].split()[0]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--admin", required=True)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    up = f"http://127.0.0.1:{server.server_address[1]}"
    doc = {"apiVersion": "gatehouse.dev/v1", "kind": "LlmProvider", "metadata": {"name": "slow"},
           "spec": {"displayName": "slow", "template": "openai", "context": "/slow",
                    "upstream": {"url": up + "/v1", "auth": {"type": "api-key", "value": "sk"}}}}
    auth = base64.b64encode(b"admin:bench").decode()
    urllib.request.urlopen(urllib.request.Request(
        args.admin + "/api/management/v1/llm-providers", data=json.dumps(doc).encode(),
        headers={"content-type": "application/json", "authorization": f"Basic {auth}"}))
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    asked = dict(body, stream_options={"include_usage": True})
    for _ in range(50):
        try:
            delays(args.gateway + "/slow/chat/completions", asked)
            break
        except Exception:
            time.sleep(0.1)
    print(f"per-chunk delay, {CHUNKS} chunks {INTERVAL * 1000:.0f} ms apart (median / max, ms):")
    print("| path | median | max |\n|---|---|---|")
    for label, url, b in [
        ("direct upstream", up + "/v1/chat/completions", asked),
        ("gatehouse LLM provider, usage asked by the client", args.gateway + "/slow/chat/completions", asked),
        ("gatehouse LLM provider, usage asked and hidden by the gateway", args.gateway + "/slow/chat/completions", body),
    ]:
        d = [x * 1000 for x in delays(url, b)]
        print(f"| {label} | {statistics.median(d):.2f} | {max(d):.2f} |")


if __name__ == "__main__":
    socket.setdefaulttimeout(30)
    main()
