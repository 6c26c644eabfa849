//! An incremental Server-Sent-Events parser: bytes in as they arrive, whole events out, each
//! with its exact bytes so that an event passed on unchanged is forwarded as received.

use bytes::{Bytes, BytesMut};

/// One event of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// `event:`, when given.
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
    /// The event's bytes as received, with the blank line that ended it.
    pub raw: Bytes,
}

/// Parses a stream of SSE bytes into events.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: BytesMut,
    /// Where to resume looking for the end of an event.
    scanned: usize,
}

/// Where the blank line ending an event ends in `b`, looking from `from`.
fn event_end(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'\n' => {
                // "\n\n" or "\n\r\n"
                if b.get(i + 1) == Some(&b'\n') {
                    return Some(i + 2);
                }
                if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                    return Some(i + 3);
                }
            }
            b'\r' => {
                // "\r\r", "\r\n\r\n"
                if b.get(i + 1) == Some(&b'\r') {
                    return Some(i + 2);
                }
                if b.get(i + 1) == Some(&b'\n')
                    && b.get(i + 2) == Some(&b'\r')
                    && b.get(i + 3) == Some(&b'\n')
                {
                    return Some(i + 4);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Calls `f` with the name and data of one event's bytes; the data is borrowed when it is one
/// line, as providers send it.
fn fields(raw: &[u8], f: &mut impl FnMut(Option<&str>, &str)) {
    let Ok(text) = std::str::from_utf8(raw) else {
        return;
    };
    let mut event = None;
    let mut first: Option<&str> = None;
    let mut joined: Option<String> = None;
    for line in text.split(['\n', '\r']) {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line, ""),
        };
        match field {
            "event" => event = Some(value),
            "data" => match (&mut joined, first) {
                (Some(j), _) => {
                    j.push('\n');
                    j.push_str(value);
                }
                (None, Some(prev)) => joined = Some(format!("{prev}\n{value}")),
                (None, None) => first = Some(value),
            },
            _ => {}
        }
    }
    match (joined, first) {
        (Some(j), _) => f(event, &j),
        (None, Some(d)) => f(event, d),
        (None, None) => {}
    }
}

/// Reads the fields of one event's bytes.
fn parse_event(raw: Bytes) -> Option<SseEvent> {
    let text = String::from_utf8_lossy(&raw);
    let mut event = None;
    let mut data: Option<String> = None;
    for line in text.split(['\n', '\r']) {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line, ""),
        };
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    if event.is_none() && data.is_none() {
        // Only comments (`: keep-alive`): still forwarded, with empty data.
        return Some(SseEvent {
            event: None,
            data: String::new(),
            raw,
        });
    }
    Some(SseEvent {
        event,
        data: data.unwrap_or_default(),
        raw,
    })
}

impl SseParser {
    /// An empty parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events completed by `chunk`.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        // Look back up to 3 bytes: the end of an event may straddle two chunks.
        let mut from = self.scanned.saturating_sub(3);
        while let Some(end) = event_end(&self.buf, from) {
            let raw = self.buf.split_to(end).freeze();
            if let Some(ev) = parse_event(raw) {
                out.push(ev);
            }
            from = 0;
        }
        self.scanned = self.buf.len();
        out
    }

    /// Bytes held for an event not yet complete.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Reads the events completed by `chunk` without keeping them: `f` gets each event's name
    /// and data. Events wholly inside `chunk` are read in place; only an unfinished tail is
    /// copied aside. For streams that are forwarded as received and only read on the way.
    pub fn scan(&mut self, chunk: &[u8], mut f: impl FnMut(Option<&str>, &str)) {
        if self.buf.is_empty() {
            let mut start = 0;
            while let Some(end) = event_end(&chunk[start..], 0) {
                fields(&chunk[start..start + end], &mut f);
                start += end;
            }
            self.buf.extend_from_slice(&chunk[start..]);
            self.scanned = self.buf.len();
            return;
        }
        self.buf.extend_from_slice(chunk);
        let mut from = self.scanned.saturating_sub(3);
        while let Some(end) = event_end(&self.buf, from) {
            let raw = self.buf.split_to(end);
            fields(&raw, &mut f);
            from = 0;
        }
        self.scanned = self.buf.len();
    }

    /// The last event, when the stream ended without its blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        self.scanned = 0;
        if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
            self.buf.clear();
            return None;
        }
        parse_event(self.buf.split().freeze())
    }
}

/// One event's bytes: `event: {event}` when given, then `data: {data}` (one line per line).
pub fn encode(event: Option<&str>, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(e) = event {
        out.push_str("event: ");
        out.push_str(e);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "event: message_start\ndata: {\"a\":1}\n\n: comment\n\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n";

    #[test]
    fn events_come_out_whole_wherever_the_chunks_split() {
        let whole: Vec<SseEvent> = SseParser::new().push(STREAM.as_bytes());
        assert_eq!(whole.len(), 4);
        assert_eq!(whole[0].event.as_deref(), Some("message_start"));
        assert_eq!(whole[0].data, "{\"a\":1}");
        assert_eq!(whole[2].data, "line1\nline2");
        assert_eq!(whole[3].data, "[DONE]");
        let raw: Vec<u8> = whole.iter().flat_map(|e| e.raw.to_vec()).collect();
        assert_eq!(raw, STREAM.as_bytes(), "raw bytes are kept exactly");
        for size in 1..STREAM.len() {
            let mut p = SseParser::new();
            let mut got = vec![];
            for chunk in STREAM.as_bytes().chunks(size) {
                got.extend(p.push(chunk));
            }
            assert_eq!(got, whole, "chunks of {size}");
            assert!(p.finish().is_none());
        }
    }

    #[test]
    fn scanning_sees_the_same_events_without_keeping_them() {
        let whole: Vec<(Option<String>, String)> = SseParser::new()
            .push(STREAM.as_bytes())
            .into_iter()
            .filter(|e| e.event.is_some() || !e.data.is_empty())
            .map(|e| (e.event, e.data))
            .collect();
        for size in 1..STREAM.len() {
            let mut p = SseParser::new();
            let mut got = vec![];
            for chunk in STREAM.as_bytes().chunks(size) {
                p.scan(chunk, |e, d| got.push((e.map(str::to_owned), d.to_owned())));
            }
            assert_eq!(got, whole, "chunks of {size}");
        }
    }

    #[test]
    fn crlf_lines_and_a_last_event_without_blank_line() {
        let mut p = SseParser::new();
        let evs = p.push(b"data: a\r\n\r\ndata: b\r\rdata: c");
        assert_eq!(
            evs.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(p.finish().unwrap().data, "c");
        assert_eq!(
            &encode(Some("x"), "1\n2")[..],
            b"event: x\ndata: 1\ndata: 2\n\n"
        );
    }

    /// Each stream cut in two at every byte, and fed one byte at a time, gives the events of
    /// the whole stream with their exact bytes, whatever the line endings.
    #[test]
    fn every_split_point_of_every_line_ending_gives_the_same_events() {
        let streams = [
            STREAM.to_owned(),
            STREAM.replace('\n', "\r\n"),
            STREAM.replace('\n', "\r"),
            "event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\rdata: 3\n\n".to_owned(),
        ];
        for stream in &streams {
            let bytes = stream.as_bytes();
            let whole = SseParser::new().push(bytes);
            assert_eq!(whole.len(), if stream.contains("event: a") { 3 } else { 4 });
            let raw: Vec<u8> = whole.iter().flat_map(|e| e.raw.to_vec()).collect();
            assert_eq!(raw, bytes, "raw bytes kept for {stream:?}");
            for cut in 0..=bytes.len() {
                let mut p = SseParser::new();
                let mut got = p.push(&bytes[..cut]);
                got.extend(p.push(&bytes[cut..]));
                assert_eq!(got, whole, "cut at {cut} of {stream:?}");
                assert_eq!(p.pending(), 0);
            }
            let mut p = SseParser::new();
            let got: Vec<SseEvent> = bytes.iter().flat_map(|b| p.push(&[*b])).collect();
            assert_eq!(got, whole, "byte by byte {stream:?}");
        }
    }

    #[test]
    fn events_keep_their_name_and_multibyte_text() {
        let text = "event: content_block_delta\ndata: {\"text\":\"héllo → 世界\"}\n\n";
        for cut in 0..=text.len() {
            let mut p = SseParser::new();
            let mut got = p.push(&text.as_bytes()[..cut]);
            got.extend(p.push(&text.as_bytes()[cut..]));
            assert_eq!(got.len(), 1, "cut at {cut}");
            assert_eq!(got[0].event.as_deref(), Some("content_block_delta"));
            assert_eq!(got[0].data, "{\"text\":\"héllo → 世界\"}");
        }
        // A field without a space after the colon, and one without a colon.
        let mut p = SseParser::new();
        let got = p.push(b"data:x\ndata\n\n");
        assert_eq!(got[0].data, "x\n");
        assert!(p.finish().is_none());
        let mut p = SseParser::new();
        assert!(p.push(b"data: tail\n").is_empty());
        assert_eq!(p.pending(), 11);
        let last = p.finish().unwrap();
        assert_eq!(
            (last.data.as_str(), &last.raw[..]),
            ("tail", &b"data: tail\n"[..])
        );
        assert!(p.finish().is_none(), "nothing is given twice");
    }
}
