//! Incremental Server-Sent Events parser.
//!
//! Bytes arrive in arbitrary pieces; complete events come out with their raw
//! bytes (so they can be forwarded untouched) and their parsed `event`/`data`.
//! Lines may end in `\n`, `\r\n` or `\r`, as the SSE spec allows.

/// One complete event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event exactly as received, including its terminating blank line.
    pub raw: Vec<u8>,
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`; empty when there were none.
    pub data: String,
}

/// Longest incomplete event kept while waiting for its end (1 MiB); a stream
/// that exceeds it is passed through as raw bytes.
pub const MAX_PENDING: usize = 1 << 20;

#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    /// Where scanning resumes in `buf`: the start of the first unscanned line.
    scan: usize,
    /// Whether the current event has any line yet.
    event_has_lines: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held for an event not yet complete.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut consumed = 0usize;
        while let Some((line_end, next)) = find_line_end(&self.buf, self.scan) {
            let line = &self.buf[self.scan..line_end];
            if line.is_empty() {
                if self.event_has_lines {
                    events.push(Event {
                        raw: self.buf[consumed..next].to_vec(),
                        event: self.event.take(),
                        data: std::mem::take(&mut self.data),
                    });
                } else {
                    // A stray blank line between events: forward it as-is.
                    events.push(Event {
                        raw: self.buf[consumed..next].to_vec(),
                        event: None,
                        data: String::new(),
                    });
                }
                self.event_has_lines = false;
                self.has_data = false;
                consumed = next;
            } else {
                self.event_has_lines = true;
                self.field(line_end);
            }
            self.scan = next;
        }
        if consumed > 0 {
            self.buf.drain(..consumed);
            self.scan -= consumed;
        }
        events
    }

    /// Ends the stream: whatever is held (an event without its blank line) is
    /// returned as raw bytes, with its fields as parsed so far.
    pub fn finish(&mut self) -> Option<Event> {
        if self.buf.is_empty() {
            return None;
        }
        // A final line without terminator still counts as a field; a lone
        // trailing '\r' (undecided while more bytes could follow) ends its line.
        let end = self.buf.len();
        let content_end = if self.buf[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        if content_end > self.scan {
            self.field(content_end);
        }
        let ev = Event {
            raw: std::mem::take(&mut self.buf),
            event: self.event.take(),
            data: std::mem::take(&mut self.data),
        };
        self.scan = 0;
        self.event_has_lines = false;
        self.has_data = false;
        Some(ev)
    }

    /// Parses the line `buf[self.scan..end]` as a field of the current event.
    fn field(&mut self, end: usize) {
        let line = &self.buf[self.scan..end];
        if line.first() == Some(&b':') {
            return; // comment
        }
        let (name, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
    }
}

/// Finds the end of the line starting at `from`: `(end of content, start of next line)`.
/// A `\r` at the very end of the buffer is not yet a line end: a `\n` may follow.
fn find_line_end(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let rest = buf.get(from..)?;
    let i = rest.iter().position(|b| *b == b'\n' || *b == b'\r')?;
    let at = from + i;
    if buf[at] == b'\n' {
        return Some((at, at + 1));
    }
    match buf.get(at + 1) {
        Some(b'\n') => Some((at, at + 2)),
        Some(_) => Some((at, at + 1)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[u8] =
        b"data: {\"a\":1}\n\n: keep-alive\n\nevent: message_start\ndata: {\"b\":\ndata: 2}\n\ndata: [DONE]\n\n";

    fn parse_all(chunks: &[&[u8]]) -> (Vec<Event>, Option<Event>) {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(p.push(c));
        }
        (out, p.finish())
    }

    #[test]
    fn parses_events_and_keeps_raw_bytes() {
        let (events, rest) = parse_all(&[STREAM]);
        assert!(rest.is_none());
        let data: Vec<_> = events.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["{\"a\":1}", "", "{\"b\":\n2}", "[DONE]"]);
        assert_eq!(events[2].event.as_deref(), Some("message_start"));
        let raw: Vec<u8> = events.iter().flat_map(|e| e.raw.clone()).collect();
        assert_eq!(raw, STREAM);
    }

    #[test]
    fn same_events_at_every_split_point() {
        let (whole, _) = parse_all(&[STREAM]);
        for i in 0..=STREAM.len() {
            let (split, rest) = parse_all(&[&STREAM[..i], &STREAM[i..]]);
            assert_eq!(split, whole, "split at {i}");
            assert!(rest.is_none());
        }
        // And one byte at a time.
        let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(parse_all(&bytes).0, whole);
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        let crlf = b"data: x\r\n\r\ndata: y\r\r";
        for i in 0..=crlf.len() {
            let (mut events, rest) = parse_all(&[&crlf[..i], &crlf[i..]]);
            // The last '\r' could still be followed by '\n': only the end of the stream decides.
            events.extend(rest);
            let data: Vec<_> = events.iter().map(|e| e.data.as_str()).collect();
            assert_eq!(data, ["x", "y"], "split at {i}");
            let raw: Vec<u8> = events.iter().flat_map(|e| e.raw.clone()).collect();
            assert_eq!(raw, crlf);
        }
    }

    #[test]
    fn unterminated_tail_comes_out_on_finish() {
        let (events, rest) = parse_all(&[b"data: a\n\ndata: b"]);
        assert_eq!(events.len(), 1);
        let rest = rest.unwrap();
        assert_eq!(rest.raw, b"data: b");
        assert_eq!(rest.data, "b");
    }
}
