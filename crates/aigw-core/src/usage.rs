//! Token usage of one request, as the provider reported it (or, later, as estimated).

use crate::schema::openai::OpenAiUsage;

/// Whether counts come from the provider or from the gateway's own estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UsageSource {
    #[default]
    Reported,
    Estimated,
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

impl Usage {
    /// Reads `usage` from a complete (non-streamed) OpenAI response body.
    pub fn from_openai_body(body: &[u8]) -> Option<Usage> {
        let peek: crate::schema::openai::UsagePeek = serde_json::from_slice(body).ok()?;
        peek.usage.flatten().map(|u| Usage::from(&u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn missing_usage_is_none_not_zero() {
        assert_eq!(Usage::from_openai_body(br#"{"choices":[]}"#), None);
        assert_eq!(Usage::from_openai_body(br#"{"usage":null}"#), None);
        assert_eq!(Usage::from_openai_body(b"garbage"), None);
    }
}
