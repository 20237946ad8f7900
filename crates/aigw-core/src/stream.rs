//! The client-side view of an OpenAI chat stream: reads usage from it
//! incrementally and, when the client did not ask for usage, removes what the
//! gateway's own `include_usage` added, so the client sees exactly what it asked for.

use std::borrow::Cow;

use crate::estimate::OutputCount;
use crate::schema::json_object::{Edit, Members};
use crate::schema::openai::UsagePeek;
use crate::sse::{Event, SseParser, MAX_PENDING};
use crate::usage::{AnthropicUsage, Usage};

/// What to do with a body chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkOutput {
    /// Forward the chunk as received.
    Unchanged,
    /// Forward these bytes instead (possibly empty: held until the event completes).
    Replace(Vec<u8>),
}

/// What the client is told when a stream stops before its end.
pub const EARLY_END_MESSAGE: &str = "the provider's stream ended before the response was complete";

/// The event that ends an OpenAI stream the provider stopped early: an error
/// chunk, and no `[DONE]`, so no client takes it for a complete answer.
pub fn openai_early_end() -> Vec<u8> {
    let mut out = b"data: ".to_vec();
    out.extend(crate::error::openai_error_body(
        "server_error",
        EARLY_END_MESSAGE,
        None,
        Some("stream_interrupted"),
    ));
    out.extend_from_slice(b"\n\n");
    out
}

/// The event that ends an Anthropic stream the provider stopped early: an
/// `error` event, and no `message_stop`.
pub fn anthropic_early_end() -> Vec<u8> {
    let mut out = b"event: error\ndata: ".to_vec();
    out.extend(crate::convert::anthropic_error_body(
        "api_error",
        EARLY_END_MESSAGE,
    ));
    out.extend_from_slice(b"\n\n");
    out
}

/// The text-bearing part of an OpenAI choice (`delta` of a chunk, or
/// `message` of a complete response), for output estimates.
#[derive(Debug, serde::Deserialize)]
pub struct OpenAiDelta<'a> {
    #[serde(default, borrow)]
    pub content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub tool_calls: Option<Vec<ToolCallText<'a>>>,
}

#[derive(Debug, serde::Deserialize)]
pub struct ToolCallText<'a> {
    #[serde(default, borrow)]
    pub function: Option<FunctionText<'a>>,
}

#[derive(Debug, serde::Deserialize)]
pub struct FunctionText<'a> {
    #[serde(default, borrow)]
    pub arguments: Option<Cow<'a, str>>,
}

impl OpenAiDelta<'_> {
    pub fn count(&self, n: &mut OutputCount) {
        for t in [&self.content, &self.reasoning_content]
            .into_iter()
            .flatten()
        {
            n.add(t);
        }
        for call in self.tool_calls.iter().flatten() {
            if let Some(a) = call.function.as_ref().and_then(|f| f.arguments.as_ref()) {
                n.add(a);
            }
        }
    }
}

/// The text of an Anthropic content block (`content_block_delta`'s `delta`,
/// or a block of a complete message), for output estimates.
#[derive(Debug, serde::Deserialize)]
pub struct AnthropicBlock<'a> {
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub partial_json: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub thinking: Option<Cow<'a, str>>,
    /// A complete `tool_use` block's input, counted as its JSON text.
    #[serde(default, borrow)]
    pub input: Option<&'a serde_json::value::RawValue>,
}

impl AnthropicBlock<'_> {
    pub fn count(&self, n: &mut OutputCount) {
        for t in [&self.text, &self.partial_json, &self.thinking]
            .into_iter()
            .flatten()
        {
            n.add(t);
        }
        if let Some(raw) = self.input {
            n.add(raw.get());
        }
    }
}

#[derive(Debug)]
pub struct OpenAiStream {
    parser: SseParser,
    strip_usage: bool,
    /// Gave up parsing (an event over [`MAX_PENDING`]): pass bytes through.
    bypass: bool,
    usage: Option<Usage>,
    saw_done: bool,
    /// An error chunk went through (the stream ended in an error already).
    saw_error: bool,
    /// A choice finished (`finish_reason` set): the answer is whole even if
    /// a server leaves out `[DONE]`.
    saw_finish: bool,
    events: u64,
    /// Estimated tokens of the text streamed so far.
    output: OutputCount,
}

impl OpenAiStream {
    /// `strip_usage`: the client did not ask for `include_usage`, so the usage
    /// chunk and the `"usage":null` members are removed.
    pub fn new(strip_usage: bool) -> Self {
        OpenAiStream {
            parser: SseParser::new(),
            strip_usage,
            bypass: false,
            usage: None,
            saw_done: false,
            saw_error: false,
            saw_finish: false,
            events: 0,
            output: OutputCount::default(),
        }
    }

    /// Whether the stream ended as a stream should: `[DONE]`, or an error
    /// chunk (the provider's or a converter's). Unknown after a bypass.
    pub fn ended_properly(&self) -> bool {
        self.bypass || self.saw_done || self.saw_error || self.saw_finish
    }

    /// Last usage the provider reported in the stream.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// Whether `data: [DONE]` went through: a stream without it ended early.
    pub fn saw_done(&self) -> bool {
        self.saw_done
    }

    /// Estimated tokens of the text streamed so far (for a provider that
    /// reports no usage).
    pub fn output_estimate(&self) -> u64 {
        self.output.0
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn push(&mut self, bytes: &[u8]) -> ChunkOutput {
        if self.bypass {
            return ChunkOutput::Unchanged;
        }
        let events = self.parser.push(bytes);
        if !self.strip_usage {
            for e in &events {
                self.observe(e);
            }
            if self.parser.pending() > MAX_PENDING {
                self.bypass = true;
                self.parser = SseParser::new();
            }
            return ChunkOutput::Unchanged;
        }
        let mut out = Vec::with_capacity(bytes.len());
        for e in events {
            self.forward(e, &mut out);
        }
        if self.parser.pending() > MAX_PENDING {
            // Too long to be an SSE event we could edit: release what is held, stop editing.
            if let Some(rest) = self.parser.finish() {
                out.extend_from_slice(&rest.raw);
            }
            self.bypass = true;
        }
        ChunkOutput::Replace(out)
    }

    /// End of stream: releases bytes held for an incomplete event.
    pub fn finish(&mut self) -> ChunkOutput {
        if self.bypass {
            return ChunkOutput::Unchanged;
        }
        let rest = self.parser.finish();
        if !self.strip_usage {
            if let Some(e) = &rest {
                self.observe(e);
            }
            return ChunkOutput::Unchanged;
        }
        let mut out = Vec::new();
        if let Some(e) = rest {
            self.forward(e, &mut out);
        }
        ChunkOutput::Replace(out)
    }

    fn observe(&mut self, e: &Event) -> Option<UsagePeek> {
        if e.data.is_empty() {
            return None;
        }
        self.events += 1;
        if e.data == "[DONE]" {
            self.saw_done = true;
            return None;
        }
        if e.event.as_deref() == Some("error") || e.data.starts_with("{\"error\"") {
            self.saw_error = true;
        }
        if e.data.contains("\"finish_reason\":\"") {
            self.saw_finish = true;
        }
        self.count_output(&e.data);
        if !e.data.contains("\"usage\"") {
            return None;
        }
        let peek: UsagePeek = serde_json::from_str(&e.data).ok()?;
        if let Some(Some(u)) = &peek.usage {
            self.usage = Some(Usage::from(u));
        }
        Some(peek)
    }

    fn count_output(&mut self, data: &str) {
        // Only a chunk with text can add to the count: skip the parse of the
        // others (the usage chunk, a finish chunk). Keys only: servers differ
        // in the spaces around `:`.
        let has_text = [
            "\"content\"",
            "\"arguments\"",
            "\"text\"",
            "\"reasoning_content\"",
        ]
        .iter()
        .any(|k| data.contains(k));
        if !has_text {
            return;
        }
        #[derive(serde::Deserialize)]
        struct Chunk<'a> {
            #[serde(default, borrow)]
            choices: Vec<ChunkChoice<'a>>,
        }
        #[derive(serde::Deserialize)]
        struct ChunkChoice<'a> {
            #[serde(default, borrow)]
            delta: Option<OpenAiDelta<'a>>,
            #[serde(default, borrow)]
            text: Option<Cow<'a, str>>,
        }
        let Ok(chunk) = serde_json::from_str::<Chunk<'_>>(data) else {
            return;
        };
        for c in &chunk.choices {
            if let Some(d) = &c.delta {
                d.count(&mut self.output);
            }
            if let Some(t) = &c.text {
                self.output.add(t);
            }
        }
    }

    fn forward(&mut self, e: Event, out: &mut Vec<u8>) {
        let Some(peek) = self.observe(&e) else {
            out.extend_from_slice(&e.raw);
            return;
        };
        let Some(usage) = peek.usage else {
            out.extend_from_slice(&e.raw);
            return;
        };
        if usage.is_some() && peek.choices.as_ref().is_some_and(Vec::is_empty) {
            return; // the usage-only chunk the client did not ask for
        }
        // A chunk carrying `usage` (null, or real usage on a content chunk): drop the member.
        let Ok(members) = Members::parse(e.data.as_bytes()) else {
            out.extend_from_slice(&e.raw);
            return;
        };
        let json = members.write(
            e.data.len(),
            |k, _| if k == "usage" { Edit::Drop } else { Edit::Keep },
            &[],
        );
        if let Some(name) = &e.event {
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(name.as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&json);
        out.extend_from_slice(b"\n\n");
    }
}

/// The client-side view of an Anthropic Messages stream: events go through
/// untouched; usage is read from `message_start` and `message_delta`.
#[derive(Debug, Default)]
pub struct AnthropicStream {
    parser: SseParser,
    bypass: bool,
    usage: Option<AnthropicUsage>,
    saw_stop: bool,
    saw_error: bool,
    output: OutputCount,
}

impl AnthropicStream {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(Usage::from)
    }

    /// Estimated tokens of the text streamed so far.
    pub fn output_estimate(&self) -> u64 {
        self.output.0
    }

    /// Whether `message_stop` went through.
    pub fn saw_stop(&self) -> bool {
        self.saw_stop
    }

    /// Whether the stream ended as a stream should: `message_stop`, or an
    /// `error` event. Unknown after a bypass.
    pub fn ended_properly(&self) -> bool {
        self.bypass || self.saw_stop || self.saw_error
    }

    /// Observes bytes on their way to the client (they are never changed).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.bypass {
            return;
        }
        for e in self.parser.push(bytes) {
            self.observe(&e);
        }
        if self.parser.pending() > MAX_PENDING {
            self.bypass = true;
            self.parser = SseParser::new();
        }
    }

    pub fn finish(&mut self) {
        if let Some(e) = self.parser.finish() {
            self.observe(&e);
        }
    }

    fn observe(&mut self, e: &Event) {
        #[derive(serde::Deserialize)]
        struct Peek {
            #[serde(default, rename = "type")]
            kind: String,
            #[serde(default)]
            message: Option<MessagePeek>,
            #[serde(default)]
            usage: Option<AnthropicUsage>,
        }
        #[derive(serde::Deserialize)]
        struct MessagePeek {
            #[serde(default)]
            usage: Option<AnthropicUsage>,
        }
        let kind = e.event.as_deref().unwrap_or("");
        if kind == "message_stop" {
            self.saw_stop = true;
            return;
        }
        if kind == "error" {
            self.saw_error = true;
            return;
        }
        if kind == "content_block_delta" {
            #[derive(serde::Deserialize)]
            struct Delta<'a> {
                #[serde(borrow)]
                delta: AnthropicBlock<'a>,
            }
            if let Ok(d) = serde_json::from_str::<Delta<'_>>(&e.data) {
                d.delta.count(&mut self.output);
            }
            return;
        }
        if kind != "message_start" && kind != "message_delta" {
            return;
        }
        let Ok(peek) = serde_json::from_str::<Peek>(&e.data) else {
            return;
        };
        let reported = match peek.kind.as_str() {
            "message_start" => peek.message.and_then(|m| m.usage),
            _ => peek.usage,
        };
        if let Some(u) = reported {
            self.usage
                .get_or_insert_with(AnthropicUsage::default)
                .merge(&u);
        }
    }
}

#[cfg(test)]
mod early_end_tests {
    use super::*;

    #[test]
    fn an_openai_stream_without_done_did_not_end_properly() {
        let mut s = OpenAiStream::new(false);
        s.push(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n");
        s.finish();
        assert!(!s.ended_properly());
        s.push(b"data: [DONE]\n\n");
        assert!(s.ended_properly());
        let mut s = OpenAiStream::new(true);
        s.push(b"data: {\"error\":{\"message\":\"overloaded\"}}\n\n");
        assert!(s.ended_properly());
        // A server that leaves out [DONE] after a finished choice ended properly.
        let mut s = OpenAiStream::new(false);
        s.push(b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
        assert!(s.ended_properly());
        let end = String::from_utf8(openai_early_end()).unwrap();
        assert!(end.starts_with("data: {\"error\":"), "{end}");
        assert!(end.ends_with("\n\n") && !end.contains("[DONE]"));
        // The early end is itself a proper ending.
        let mut s = OpenAiStream::new(false);
        s.push(&openai_early_end());
        assert!(s.ended_properly());
    }

    #[test]
    fn streamed_text_is_counted_for_estimates() {
        let mut s = OpenAiStream::new(false);
        s.push(b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n");
        s.push(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\ndata: {\"choi");
        s.push(b"ces\":[{\"delta\":{\"content\":\" world!!\"}}]}\n\ndata: [DONE]\n\n");
        // "Hello" 2 + " world!!" 2.
        assert_eq!(s.output_estimate(), 4);
        // Spaces around `:` (as Python servers write JSON) count the same.
        let mut spaced = OpenAiStream::new(false);
        spaced.push(b"data: {\"choices\": [{\"delta\": {\"content\": \"Hello\"}}]}\n\n");
        assert_eq!(spaced.output_estimate(), 2);
        let mut a = AnthropicStream::new();
        a.push(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello there\"}}\n\n");
        a.push(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":1}\"}}\n\n");
        assert_eq!(a.output_estimate(), 3 + 2);
    }

    #[test]
    fn an_anthropic_stream_without_message_stop_did_not_end_properly() {
        let mut s = AnthropicStream::new();
        s.push(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n");
        s.finish();
        assert!(!s.ended_properly());
        s.push(&anthropic_early_end());
        assert!(s.ended_properly());
        let end = String::from_utf8(anthropic_early_end()).unwrap();
        assert!(end.starts_with("event: error\ndata: {"), "{end}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(delta: &str, usage: &str) -> String {
        format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{delta}}}]{usage}}}\n\n")
    }

    fn provider_stream_with_usage() -> String {
        let mut s = String::new();
        s += &chunk(r#"{"role":"assistant","content":""}"#, r#","usage":null"#);
        s += &chunk(r#"{"content":"Hi"}"#, r#","usage":null"#);
        s += "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n";
        s += "data: [DONE]\n\n";
        s
    }

    fn run(stream: &[u8], splits: &[usize], strip: bool) -> (Vec<u8>, OpenAiStream) {
        let mut p = OpenAiStream::new(strip);
        let mut out = Vec::new();
        let mut last = 0;
        for &i in splits.iter().chain(std::iter::once(&stream.len())) {
            match p.push(&stream[last..i]) {
                ChunkOutput::Unchanged => out.extend_from_slice(&stream[last..i]),
                ChunkOutput::Replace(b) => out.extend(b),
            }
            last = i;
        }
        if let ChunkOutput::Replace(b) = p.finish() {
            out.extend(b);
        }
        (out, p)
    }

    #[test]
    fn strips_what_the_gateway_added_when_the_client_did_not_ask() {
        let s = provider_stream_with_usage();
        let (out, p) = run(s.as_bytes(), &[], true);
        let expected = chunk(r#"{"role":"assistant","content":""}"#, "")
            + &chunk(r#"{"content":"Hi"}"#, "")
            + "data: [DONE]\n\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        let u = p.usage().unwrap();
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.total_tokens),
            (Some(5), Some(2), Some(7))
        );
        assert!(p.saw_done());
    }

    #[test]
    fn passes_through_untouched_when_the_client_asked() {
        let s = provider_stream_with_usage();
        let (out, p) = run(s.as_bytes(), &[], false);
        assert_eq!(out, s.as_bytes());
        assert_eq!(p.usage().unwrap().total_tokens, Some(7));
    }

    #[test]
    fn identical_output_at_every_split_point() {
        let s = provider_stream_with_usage();
        for strip in [true, false] {
            let (whole, _) = run(s.as_bytes(), &[], strip);
            for i in 0..=s.len() {
                let (out, p) = run(s.as_bytes(), &[i], strip);
                assert_eq!(out, whole, "strip={strip} split at {i}");
                assert_eq!(p.usage().unwrap().total_tokens, Some(7));
            }
            for i in (0..s.len()).step_by(7) {
                for j in (i..s.len()).step_by(11) {
                    let (out, _) = run(s.as_bytes(), &[i, j], strip);
                    assert_eq!(out, whole, "strip={strip} split at {i},{j}");
                }
            }
        }
    }

    #[test]
    fn usage_on_a_content_chunk_is_kept_as_data_but_removed_for_the_client() {
        let s = chunk(
            r#"{"content":"x"}"#,
            r#","usage":{"prompt_tokens":1,"completion_tokens":1}"#,
        ) + "data: [DONE]\n\n";
        let (out, p) = run(s.as_bytes(), &[], true);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            chunk(r#"{"content":"x"}"#, "") + "data: [DONE]\n\n"
        );
        assert_eq!(p.usage().unwrap().total_tokens, Some(2));
    }

    #[test]
    fn usage_sent_twice_keeps_the_last() {
        let s = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n\
                 data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n";
        let (out, p) = run(s.as_bytes(), &[], true);
        assert_eq!(out, b"data: [DONE]\n\n");
        assert_eq!(p.usage().unwrap().output_tokens, Some(3));
    }

    #[test]
    fn cut_stream_has_no_done_and_keeps_partial_bytes() {
        let s = chunk(r#"{"content":"x"}"#, "") + "data: {\"choi";
        let (out, p) = run(s.as_bytes(), &[], true);
        assert_eq!(out, s.as_bytes());
        assert!(!p.saw_done());
        assert!(p.usage().is_none());
    }

    const ANTHROPIC: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":12,\"cache_read_input_tokens\":4,\"output_tokens\":1}}}\n\n\
        event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"usage\"}}\n\n\
        event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n\
        event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    #[test]
    fn anthropic_usage_is_read_from_start_and_delta_at_every_split() {
        for i in 0..=ANTHROPIC.len() {
            let mut s = AnthropicStream::new();
            s.push(&ANTHROPIC.as_bytes()[..i]);
            s.push(&ANTHROPIC.as_bytes()[i..]);
            s.finish();
            let u = s.usage().unwrap();
            assert_eq!(
                (u.input_tokens, u.output_tokens, u.cached_input_tokens),
                (Some(16), Some(7), Some(4)),
                "split {i}"
            );
            assert!(s.saw_stop());
        }
    }

    #[test]
    fn non_json_data_passes_through() {
        let s = "data: not json \"usage\"\n\n: comment\n\ndata: [DONE]\n\n";
        let (out, _) = run(s.as_bytes(), &[3], true);
        assert_eq!(out, s.as_bytes());
    }
}
