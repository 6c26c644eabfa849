//! A fake LLM provider for tests, speaking three APIs on one port and recording what it got:
//! - OpenAI chat completions (`.../chat/completions`), plain and streamed; usage in a stream
//!   only when the request sets `stream_options.include_usage`, exactly as OpenAI does (every
//!   chunk then carries `"usage":null` and one more chunk with `"choices":[]` carries it);
//! - Anthropic messages (`.../messages`), plain and streamed (typed events);
//! - Gemini `.../models/{model}:generateContent` and `:streamGenerateContent?alt=sse`.
//!
//! Prompt tokens are the words of the prompt text; the reply is `reply` (default "Hello from
//! <name>"), one word per streamed chunk, and completion tokens are its words.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpListener;

type Body = BoxBody<Bytes, Infallible>;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Value,
}

struct Shared {
    name: String,
    reply: Mutex<String>,
    fail_with: AtomicU16,
    received: Mutex<Vec<Received>>,
}

/// A running fake provider; stops when dropped.
pub struct FakeLlm {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeLlm {
    /// Starts a fake provider named `name` on a free port.
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake LLM");
        let addr = listener.local_addr().expect("fake LLM addr");
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            reply: Mutex::new(format!("Hello from {name}")),
            fail_with: AtomicU16::new(0),
            received: Mutex::default(),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(s.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { addr, shared, task }
    }

    /// `http://addr` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers every request with `status` (an error in OpenAI's shape); 0 to answer again.
    pub fn fail_with(&self, status: u16) {
        self.shared.fail_with.store(status, Ordering::SeqCst);
    }

    /// What the model answers.
    pub fn set_reply(&self, reply: &str) {
        *self.shared.reply.lock().unwrap() = reply.to_owned();
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Words of every string under `content`, `text` or `system` in `v`.
fn prompt_words(v: &Value) -> u64 {
    fn walk(v: &Value, key: Option<&str>, n: &mut u64) {
        match v {
            Value::String(s) if matches!(key, Some("content" | "text" | "system")) => {
                *n += s.split_whitespace().count() as u64
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, key, n)),
            Value::Object(o) => o.iter().for_each(|(k, x)| walk(x, Some(k), n)),
            _ => {}
        }
    }
    let mut n = 0;
    walk(v, None, &mut n);
    n
}

fn json_response(status: u16, v: Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())).boxed());
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

fn sse_response(events: Vec<String>) -> Response<Body> {
    let frames = events
        .into_iter()
        .map(|e| Ok::<_, Infallible>(Frame::data(Bytes::from(e))));
    let stream = futures::stream::iter(frames);
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    r.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    r
}

async fn handle(s: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let headers = req.headers().clone();
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    s.received.lock().unwrap().push(Received {
        path: path.clone(),
        headers,
        body: body.clone(),
    });
    let fail = s.fail_with.load(Ordering::SeqCst);
    if fail != 0 {
        return Ok(json_response(
            fail,
            json!({"error": {"message": format!("{} is failing", s.name), "type": "api_error"}}),
        ));
    }
    let reply = s.reply.lock().unwrap().clone();
    let words: Vec<String> = reply.split_inclusive(' ').map(str::to_owned).collect();
    let completion = words.len() as u64;
    let prompt = prompt_words(&body);
    let model = body["model"].as_str().unwrap_or("unknown").to_owned();
    let stream = body["stream"].as_bool().unwrap_or(false);
    Ok(if path.ends_with("/chat/completions") {
        openai(&model, &reply, &words, prompt, completion, stream, &body)
    } else if path.ends_with("/messages") {
        anthropic(&model, &reply, &words, prompt, completion, stream)
    } else if path.contains(":generateContent") || path.contains(":streamGenerateContent") {
        let model = path
            .rsplit('/')
            .next()
            .and_then(|m| m.split(':').next())
            .unwrap_or("unknown")
            .to_owned();
        gemini(
            &model,
            &words,
            prompt,
            completion,
            path.contains(":stream") && query.contains("alt=sse"),
        )
    } else {
        json_response(
            404,
            json!({"error": {"message": format!("no route {path}")}}),
        )
    })
}

fn openai(
    model: &str,
    reply: &str,
    words: &[String],
    prompt: u64,
    completion: u64,
    stream: bool,
    body: &Value,
) -> Response<Body> {
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion});
    if !stream {
        return json_response(
            200,
            json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                   "usage": usage}),
        );
    }
    let include = body["stream_options"]["include_usage"].as_bool() == Some(true);
    let chunk = |delta: Value, finish: Value| {
        let mut c = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        if include {
            c["usage"] = Value::Null;
        }
        format!("data: {c}\n\n")
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for w in words {
        events.push(chunk(json!({"content": w}), Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    if include {
        let c = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
                       "choices": [], "usage": usage});
        events.push(format!("data: {c}\n\n"));
    }
    events.push("data: [DONE]\n\n".to_owned());
    sse_response(events)
}

fn anthropic(
    model: &str,
    reply: &str,
    words: &[String],
    prompt: u64,
    completion: u64,
    stream: bool,
) -> Response<Body> {
    if !stream {
        return json_response(
            200,
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                   "content": [{"type": "text", "text": reply}], "stop_reason": "end_turn", "stop_sequence": null,
                   "usage": {"input_tokens": prompt, "output_tokens": completion}}),
        );
    }
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![
        ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": prompt, "output_tokens": 1}}}),
        ),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ev("ping", json!({"type": "ping"})),
    ];
    for w in words {
        events.push(ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}}),
        ));
    }
    events.push(ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": completion}})));
    events.push(ev("message_stop", json!({"type": "message_stop"})));
    sse_response(events)
}

fn gemini(
    model: &str,
    words: &[String],
    prompt: u64,
    completion: u64,
    stream: bool,
) -> Response<Body> {
    let usage = json!({"promptTokenCount": prompt, "candidatesTokenCount": completion, "totalTokenCount": prompt + completion});
    let candidate =
        |text: &str| json!([{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}]);
    if !stream {
        return json_response(
            200,
            json!({"candidates": candidate(&words.concat()), "usageMetadata": usage, "modelVersion": model}),
        );
    }
    let n = words.len();
    let events = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut c = json!({"candidates": candidate(w), "modelVersion": model});
            c["usageMetadata"] = if i + 1 == n {
                usage.clone()
            } else {
                json!({"promptTokenCount": prompt, "totalTokenCount": prompt})
            };
            format!("data: {c}\n\n")
        })
        .collect();
    sse_response(events)
}
