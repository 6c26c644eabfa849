"""Fake LLM providers for the SDK tests, run in threads of the test process.

- `FakeOpenAI`: `POST .../chat/completions`, plain and streamed. Like OpenAI, a stream reports
  usage only when the request sets `stream_options.include_usage`; then every chunk carries
  `"usage": null` and one more chunk with `"choices": []` carries the usage, before `[DONE]`.
- `FakeAnthropic`: `POST .../messages`, plain and streamed (typed events); requires `x-api-key`
  and `anthropic-version`.

Prompt tokens are the words of the prompt text; the reply is "Hello from <name>", one word per
streamed chunk, and completion tokens are its words. Every request is recorded.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def words(body):
    """Words of every string under content, text or system keys."""
    n = 0

    def walk(v, key=None):
        nonlocal n
        if isinstance(v, str) and key in ("content", "text", "system"):
            n += len(v.split())
        elif isinstance(v, list):
            for x in v:
                walk(x, key)
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(x, k)

    walk(body)
    return n


class Fake:
    """A provider on 127.0.0.1 in a thread; `fail_with` makes it answer that status."""

    def __init__(self, name):
        self.name = name
        self.requests = []
        self.fail_with = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                body = json.loads(raw or b"{}")
                fake.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                fake.handle(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reply(self):
        return f"Hello from {self.name}"

    def close(self):
        self.server.shutdown()

    @staticmethod
    def json(h, status, obj):
        data = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def sse(h, events):
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("transfer-encoding", "chunked")
        h.end_headers()
        for e in events:
            raw = e.encode()
            h.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            h.wfile.flush()
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()


class FakeOpenAI(Fake):
    def handle(self, h, body):
        if self.fail_with:
            return self.json(h, self.fail_with, {"error": {"message": f"{self.name} is failing", "type": "api_error"}})
        if not h.path.endswith("/chat/completions"):
            return self.json(h, 404, {"error": {"message": "no such route"}})
        model = body.get("model", "unknown")
        reply = self.reply()
        parts = [w + " " for w in reply.split(" ")[:-1]] + [reply.split(" ")[-1]]
        usage = {"prompt_tokens": words(body), "completion_tokens": len(parts)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not body.get("stream"):
            return self.json(h, 200, {
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                "usage": usage})
        include = (body.get("stream_options") or {}).get("include_usage") is True

        def chunk(delta, finish=None):
            c = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if include:
                c["usage"] = None
            return "data: " + json.dumps(c, separators=(",", ":")) + "\n\n"

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": p}) for p in parts]
        events.append(chunk({}, "stop"))
        if include:
            events.append("data: " + json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                                                 "model": model, "choices": [], "usage": usage},
                                                separators=(",", ":")) + "\n\n")
        events.append("data: [DONE]\n\n")
        self.sse(h, events)


class FakeAnthropic(Fake):
    def handle(self, h, body):
        if not h.headers.get("x-api-key") or not h.headers.get("anthropic-version"):
            return self.json(h, 401, {"type": "error", "error": {"type": "authentication_error",
                                                                 "message": "x-api-key and anthropic-version are required"}})
        if not h.path.endswith("/messages"):
            return self.json(h, 404, {"type": "error", "error": {"type": "not_found_error", "message": h.path}})
        model = body.get("model", "unknown")
        reply = self.reply()
        parts = [w + " " for w in reply.split(" ")[:-1]] + [reply.split(" ")[-1]]
        prompt = words(body)
        if not body.get("stream"):
            return self.json(h, 200, {
                "id": "msg_1", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": reply}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": prompt, "output_tokens": len(parts)}})

        def ev(name, data):
            return f"event: {name}\ndata: {json.dumps(data)}\n\n"

        events = [
            ev("message_start", {"type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": prompt, "output_tokens": 1}}}),
            ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ev("ping", {"type": "ping"}),
        ]
        events += [ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "text_delta", "text": p}}) for p in parts]
        events += [
            ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                 "usage": {"output_tokens": len(parts)}}),
            ev("message_stop", {"type": "message_stop"}),
        ]
        self.sse(h, events)
