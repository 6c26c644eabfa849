//! The body of an LLM response on its way to the client: forwarded frame by frame as it arrives
//! while the usage it reports is read on the fly (JSON at its end, SSE event by event), and,
//! where needed, each stream event rewritten (OpenAI's usage chunk hidden, Anthropic events
//! translated, a response guardrail applied). When the body ends, or the client goes away, the
//! exchange is recorded: metrics, token limits, cost.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use gatehouse_core::llm::ApiFamily;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::route::LlmRoute;
use super::token_limit::Caller;
use crate::llm::errors::{error_body, LlmErrorKind};
use crate::llm::guardrails::stream_delta_text;
use crate::llm::include_usage::{scrub_chunk, Scrubbed};
use crate::llm::sse::{SseEvent, SseParser};
use crate::llm::translate::MessagesStreamToChat;
use crate::llm::usage::{self, StreamUsage, Usage};

/// JSON bodies larger than this are forwarded but not read for usage.
const MAX_READ_JSON: usize = 8 << 20;

/// Records one exchange once, when its response is over.
pub struct Recorder {
    pub route: Arc<LlmRoute>,
    pub target: usize,
    pub caller: Caller,
    pub status: u16,
    pub started: Instant,
    pub requested_model: Option<String>,
}

impl Recorder {
    /// Records the time to the first chunk of a stream.
    pub fn first_token(&self) {
        self.route.targets[self.target]
            .metrics
            .first_token(self.started.elapsed());
    }

    /// Records the finished exchange with the usage its response reported.
    pub fn finish(&self, usage: &Usage) {
        let model = usage
            .model
            .as_deref()
            .or(self.requested_model.as_deref())
            .unwrap_or("unknown");
        let (p, c) = (
            usage.prompt_tokens.unwrap_or(0),
            usage.completion_tokens.unwrap_or(0),
        );
        let cost = (p + c > 0)
            .then(|| self.route.pricing.cost(model, p, c))
            .flatten();
        self.route.targets[self.target].metrics.record(
            model,
            self.status,
            usage,
            cost,
            self.started.elapsed(),
        );
        let now = Instant::now();
        for limit in &self.route.policies.token_limits {
            limit.add(&self.caller, p, c, now);
        }
    }
}

/// How the body is read.
enum Mode {
    /// A JSON (or other) body, its frames kept aside (shared, not copied) up to a bound and
    /// read at its end.
    Json {
        seen: Vec<Bytes>,
        len: usize,
        over: bool,
    },
    /// An SSE stream, read event by event.
    Sse(Box<SseState>),
}

/// What a stream needs besides its parser.
struct SseState {
    parser: SseParser,
    usage: StreamUsage,
    /// Hide the usage the gateway asked for.
    scrub: bool,
    translate: Option<MessagesStreamToChat>,
    /// The response text so far, when a guardrail reads responses.
    guarded_text: Option<String>,
}

impl SseState {
    /// Whether events are rewritten (else frames pass through untouched).
    fn rewrites(&self) -> bool {
        self.scrub || self.translate.is_some() || self.guarded_text.is_some()
    }
}

/// The response body of an LLM exchange.
pub struct LlmBody {
    inner: Incoming,
    mode: Mode,
    recorder: Option<Recorder>,
    first_seen: bool,
    /// The stream was cut (a guardrail refused it); nothing more is sent.
    cut: bool,
}

impl LlmBody {
    /// Reads a JSON (non-stream) response for its usage.
    pub fn json(inner: Incoming, recorder: Recorder) -> Self {
        Self {
            inner,
            mode: Mode::Json {
                seen: Vec::new(),
                len: 0,
                over: false,
            },
            recorder: Some(recorder),
            first_seen: true,
            cut: false,
        }
    }

    /// Reads an SSE stream; `scrub` hides the usage the gateway asked for, `translate` turns
    /// Anthropic events into OpenAI chunks.
    pub fn sse(
        inner: Incoming,
        recorder: Recorder,
        scrub: bool,
        translate: Option<MessagesStreamToChat>,
    ) -> Self {
        let guarded_text = recorder
            .route
            .policies
            .guard
            .as_ref()
            .filter(|g| g.reads_responses())
            .map(|_| String::new());
        Self {
            inner,
            mode: Mode::Sse(Box::new(SseState {
                parser: SseParser::new(),
                usage: StreamUsage::default(),
                scrub,
                translate,
                guarded_text,
            })),
            recorder: Some(recorder),
            first_seen: false,
            cut: false,
        }
    }

    fn finish(&mut self) {
        let Some(rec) = self.recorder.take() else {
            return;
        };
        let target = &rec.route.targets[rec.target];
        let usage = match &mut self.mode {
            Mode::Json { seen, over, .. } => {
                let parsed = match (seen.as_slice(), *over) {
                    (_, true) | ([], _) => None,
                    ([one], _) => serde_json::from_slice(one).ok(),
                    (many, _) => serde_json::from_slice(&many.concat()).ok(),
                };
                parsed
                    .map(|v: serde_json::Value| usage::from_json(&target.template.extract, &v))
                    .unwrap_or_default()
            }
            Mode::Sse(s) => s.usage.usage(),
        };
        rec.finish(&usage);
    }

    /// Records the exchange now when the frame in hand is the body's last (its length is
    /// known), so that it is counted before the client has the whole answer.
    fn finish_if_last(&mut self) {
        if !self.inner.is_end_stream() {
            return;
        }
        if let Mode::Sse(s) = &mut self.mode {
            let last: Vec<SseEvent> = s.parser.finish().into_iter().collect();
            let mut ignored = BytesMut::new();
            self.on_events(last, &mut ignored);
        }
        self.finish();
    }

    /// Reads `events` of the stream; returns the bytes to send when events are rewritten.
    fn on_events(&mut self, events: Vec<SseEvent>, out: &mut BytesMut) {
        let Some(rec) = &self.recorder else {
            return;
        };
        let Mode::Sse(s) = &mut self.mode else {
            return;
        };
        let target = &rec.route.targets[rec.target];
        let upstream_api = target.template.api;
        let x = &target.template.extract.stream;
        for ev in events {
            // Parsed only when it may report usage or a model, or a guardrail reads it.
            let parse = ev.data.starts_with('{')
                && (s.guarded_text.is_some() || s.usage.wants(x, &ev.data));
            let data: Option<serde_json::Value> = if parse {
                serde_json::from_str(&ev.data).ok()
            } else {
                None
            };
            if let Some(d) = &data {
                s.usage.observe(x, d);
            }
            if !s.rewrites() || self.cut {
                continue;
            }
            if let (Some(text), Some(d), Some(guard)) =
                (&mut s.guarded_text, &data, &rec.route.policies.guard)
            {
                if let Some(delta) = stream_delta_text(upstream_api, d) {
                    text.push_str(delta);
                    if let Err(rule) = guard.check_text(text) {
                        out.extend_from_slice(&stream_error(rec.route.api, &rule));
                        self.cut = true;
                        continue;
                    }
                }
            }
            if let Some(tr) = &mut s.translate {
                for b in tr.event(&ev) {
                    out.extend_from_slice(&b);
                }
            } else if s.scrub {
                match scrub_chunk(&ev) {
                    Scrubbed::Keep => out.extend_from_slice(&ev.raw),
                    Scrubbed::Drop => {}
                    Scrubbed::Rewrite(b) => out.extend_from_slice(&b),
                }
            } else {
                out.extend_from_slice(&ev.raw);
            }
        }
    }
}

/// The event that ends a stream a guardrail refused, in the client's API shape.
fn stream_error(api: ApiFamily, rule: &str) -> Bytes {
    let body = error_body(
        api,
        502,
        LlmErrorKind::GuardrailResponse,
        &format!("response refused by guardrail rule '{rule}'"),
    );
    let mut out = BytesMut::new();
    if api == ApiFamily::Anthropic {
        out.extend_from_slice(b"event: error\n");
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&body);
    out.extend_from_slice(b"\n\n");
    out.freeze()
}

impl Body for LlmBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        loop {
            if this.cut {
                this.finish();
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Some(data) = frame.data_ref() else {
                        return Poll::Ready(Some(Ok(frame)));
                    };
                    if !this.first_seen {
                        this.first_seen = true;
                        if let Some(r) = &this.recorder {
                            r.first_token();
                        }
                    }
                    match &mut this.mode {
                        Mode::Json { seen, len, over } => {
                            if !*over && *len + data.len() <= MAX_READ_JSON {
                                *len += data.len();
                                seen.push(data.clone());
                            } else {
                                *over = true;
                                seen.clear();
                            }
                            this.finish_if_last();
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        Mode::Sse(s) if !s.rewrites() => {
                            // Forwarded as received: only read on the way, in place.
                            if let Some(rec) = &this.recorder {
                                let x = &rec.route.targets[rec.target].template.extract.stream;
                                let SseState { parser, usage, .. } = &mut **s;
                                parser.scan(data, |_, d| {
                                    if d.starts_with('{') && usage.wants(x, d) {
                                        if let Ok(v) = serde_json::from_str(d) {
                                            usage.observe(x, &v);
                                        }
                                    }
                                });
                            }
                            this.finish_if_last();
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        Mode::Sse(s) => {
                            let events = s.parser.push(data);
                            let mut out = BytesMut::new();
                            this.on_events(events, &mut out);
                            if !out.is_empty() {
                                return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
                            }
                        }
                    }
                }
                Some(Err(e)) => {
                    this.finish();
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    let mut out = BytesMut::new();
                    if let Mode::Sse(s) = &mut this.mode {
                        let last: Vec<SseEvent> = s.parser.finish().into_iter().collect();
                        let rewrites = s.rewrites();
                        this.on_events(last, &mut out);
                        if !rewrites {
                            out.clear();
                        }
                    }
                    this.finish();
                    if !out.is_empty() {
                        this.cut = true;
                        return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recorder.is_none() && (self.cut || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        match &self.mode {
            Mode::Json { .. } => self.inner.size_hint(),
            Mode::Sse(_) => SizeHint::default(),
        }
    }
}

impl Drop for LlmBody {
    fn drop(&mut self) {
        // The client went away before the end: count what was seen.
        self.finish();
    }
}
