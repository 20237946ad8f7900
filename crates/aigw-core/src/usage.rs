//! Token usage of one request, as the provider reported it (or, later, as estimated).

use crate::schema::openai::OpenAiUsage;

/// Whether counts come from the provider or from the gateway's own estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UsageSource {
    #[default]
    Reported,
    Estimated,
}

impl UsageSource {
    /// As in metrics and the access log.
    pub fn as_str(self) -> &'static str {
        match self {
            UsageSource::Reported => "reported",
            UsageSource::Estimated => "estimated",
        }
    }
}

/// Token counts; `None` means "not known", never zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
    pub cached_input_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    pub source: UsageSource,
}

impl From<&OpenAiUsage> for Usage {
    fn from(u: &OpenAiUsage) -> Self {
        let total = u
            .total_tokens
            .or(match (u.prompt_tokens, u.completion_tokens) {
                (Some(p), Some(c)) => Some(p.saturating_add(c)),
                _ => None,
            });
        Usage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
            total_tokens: total,
            cached_input_tokens: u
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens),
            reasoning_tokens: u
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens),
            source: UsageSource::Reported,
        }
    }
}

/// Anthropic's `usage` object (in a message, `message_start` and `message_delta`).
#[derive(Debug, Clone, Default, serde::Deserialize, PartialEq, Eq)]
pub struct AnthropicUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// Folds a later report into this one: fields it carries replace ours.
    pub fn merge(&mut self, later: &AnthropicUsage) {
        self.input_tokens = later.input_tokens.or(self.input_tokens);
        self.output_tokens = later.output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens = later
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = later
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
    }
}

impl From<&AnthropicUsage> for Usage {
    /// Input counts every prompt token, as OpenAI's `prompt_tokens` does:
    /// `input_tokens + cache_creation_input_tokens + cache_read_input_tokens`.
    fn from(u: &AnthropicUsage) -> Self {
        let input = match (
            u.input_tokens,
            u.cache_creation_input_tokens,
            u.cache_read_input_tokens,
        ) {
            (None, None, None) => None,
            (a, b, c) => Some(a.unwrap_or(0) + b.unwrap_or(0) + c.unwrap_or(0)),
        };
        let total = match (input, u.output_tokens) {
            (Some(i), Some(o)) => Some(i.saturating_add(o)),
            _ => None,
        };
        Usage {
            input_tokens: input,
            output_tokens: u.output_tokens,
            total_tokens: total,
            cached_input_tokens: u.cache_read_input_tokens,
            reasoning_tokens: None,
            source: UsageSource::Reported,
        }
    }
}

impl Usage {
    /// Reads `usage` from a complete (non-streamed) Anthropic message.
    pub fn from_anthropic_body(body: &[u8]) -> Option<Usage> {
        #[derive(serde::Deserialize)]
        struct Peek {
            #[serde(default)]
            usage: Option<AnthropicUsage>,
        }
        let peek: Peek = serde_json::from_slice(body).ok()?;
        peek.usage.map(|u| Usage::from(&u))
    }

    /// The gateway's own count, for a response whose provider reported none:
    /// the prompt's estimate and the estimate of the text the response
    /// carried ([`crate::estimate`]).
    pub fn estimated(input: u64, output: u64) -> Usage {
        Usage {
            input_tokens: Some(input),
            output_tokens: Some(output),
            total_tokens: Some(input.saturating_add(output)),
            cached_input_tokens: None,
            reasoning_tokens: None,
            source: UsageSource::Estimated,
        }
    }

    /// A usage that says nothing: all zero. A converter writes one when the
    /// provider reported none (Anthropic's schema requires `usage`); no real
    /// request uses zero tokens.
    pub fn is_empty_report(&self) -> bool {
        self.total_tokens.unwrap_or(0) == 0
            && self.input_tokens.unwrap_or(0) == 0
            && self.output_tokens.unwrap_or(0) == 0
    }

    /// The usage the provider reported, or the gateway's estimate when it
    /// reported none (or an empty one).
    pub fn or_estimate(reported: Option<Usage>, input: u64, output: u64) -> Usage {
        match reported {
            Some(u) if !u.is_empty_report() => u,
            _ => Usage::estimated(input, output),
        }
    }

    /// Reads `usage` from a complete (non-streamed) OpenAI response body.
    pub fn from_openai_body(body: &[u8]) -> Option<Usage> {
        let peek: crate::schema::openai::UsagePeek = serde_json::from_slice(body).ok()?;
        peek.usage.flatten().map(|u| Usage::from(&u))
    }
}

/// Estimated tokens of the text of a complete OpenAI response (choices'
/// `message.content`, `text`, tool-call arguments, reasoning content).
pub fn openai_body_output(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Body<'a> {
        #[serde(default, borrow)]
        choices: Vec<Choice<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Choice<'a> {
        #[serde(default, borrow)]
        message: Option<crate::stream::OpenAiDelta<'a>>,
        #[serde(default, borrow)]
        text: Option<std::borrow::Cow<'a, str>>,
    }
    let b: Body<'_> = serde_json::from_slice(body).ok()?;
    let mut n = crate::estimate::OutputCount::default();
    for c in &b.choices {
        if let Some(m) = &c.message {
            m.count(&mut n);
        }
        if let Some(t) = &c.text {
            n.add(t);
        }
    }
    Some(n.0)
}

/// Estimated tokens of the text of a complete Anthropic message.
pub fn anthropic_body_output(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Body<'a> {
        #[serde(default, borrow)]
        content: Vec<crate::stream::AnthropicBlock<'a>>,
    }
    let b: Body<'_> = serde_json::from_slice(body).ok()?;
    let mut n = crate::estimate::OutputCount::default();
    for block in &b.content {
        block.count(&mut n);
    }
    Some(n.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_text_of_complete_bodies_is_estimated() {
        let openai =
            br#"{"choices":[{"message":{"role":"assistant","content":"Hello there, world!",
            "tool_calls":[{"function":{"name":"f","arguments":"{\"a\":1}"}}]}}]}"#;
        // "Hello there, world!" 19 chars: 5; the arguments 7 chars: 2.
        assert_eq!(openai_body_output(openai), Some(7));
        let anthropic = br#"{"content":[{"type":"text","text":"Hello there, world!"},
            {"type":"tool_use","name":"f","input":{"a":1}}]}"#;
        assert_eq!(anthropic_body_output(anthropic), Some(5 + 2));
        let u = Usage::estimated(10, 7);
        assert_eq!(
            (u.total_tokens, u.source),
            (Some(17), UsageSource::Estimated)
        );
        // An all-zero report (a converter's placeholder) is no report.
        let zero = Usage {
            input_tokens: Some(0),
            output_tokens: Some(0),
            ..Usage::default()
        };
        assert_eq!(
            Usage::or_estimate(Some(zero), 4, 5).source,
            UsageSource::Estimated
        );
        let real = Usage::estimated(1, 1);
        assert_eq!(Usage::or_estimate(Some(real.clone()), 4, 5), real);
    }

    #[test]
    fn reads_usage_from_a_response_body() {
        let u = Usage::from_openai_body(
            br#"{"id":"x","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":4,"completion_tokens_details":{"reasoning_tokens":2}}}"#,
        )
        .unwrap();
        assert_eq!(u.input_tokens, Some(10));
        assert_eq!(u.output_tokens, Some(4));
        assert_eq!(u.total_tokens, Some(14));
        assert_eq!(u.reasoning_tokens, Some(2));
        assert_eq!(u.cached_input_tokens, None);
        assert_eq!(u.source, UsageSource::Reported);
    }

    #[test]
    fn anthropic_usage_counts_cached_prompt_tokens_as_input() {
        let u = Usage::from_anthropic_body(
            br#"{"type":"message","usage":{"input_tokens":10,"output_tokens":3,"cache_creation_input_tokens":5,"cache_read_input_tokens":100}}"#,
        )
        .unwrap();
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.total_tokens),
            (Some(115), Some(3), Some(118))
        );
        assert_eq!(u.cached_input_tokens, Some(100));
        assert_eq!(Usage::from_anthropic_body(br#"{"type":"message"}"#), None);
    }

    #[test]
    fn missing_usage_is_none_not_zero() {
        assert_eq!(Usage::from_openai_body(br#"{"choices":[]}"#), None);
        assert_eq!(Usage::from_openai_body(br#"{"usage":null}"#), None);
        assert_eq!(Usage::from_openai_body(b"garbage"), None);
    }
}
