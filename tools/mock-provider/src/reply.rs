//! What a reply says, whatever the protocol: the words or a tool call, and why it stopped.
//! The protocol modules (`openai.rs`, `anthropic.rs`, `gemini.rs`) only render it.

use serde::Serialize;

/// Arguments of the tool call a reply makes when one is programmed (the tool's name is the
/// programmed one).
pub const TOOL_CALL_ARGUMENTS: &str = r#"{"location":"Paris","unit":"celsius"}"#;

/// [`TOOL_CALL_ARGUMENTS`] in the three pieces a stream sends them in (none of them valid
/// JSON on its own, so a client must accumulate them).
pub const TOOL_CALL_FRAGMENTS: [&str; 3] =
    [r#"{"location":"#, r#""Paris","unit":"#, r#""celsius"}"#];

/// [`TOOL_CALL_ARGUMENTS`] as a value, for protocols that send the arguments as an object
/// (Anthropic's `input`, Gemini's `args`). Serializes to exactly [`TOOL_CALL_ARGUMENTS`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ToolArguments {
    location: &'static str,
    unit: &'static str,
}

pub const TOOL_ARGUMENTS: ToolArguments = ToolArguments {
    location: "Paris",
    unit: "celsius",
};

/// What the assistant says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Text chunks; joined, they are the reply text.
    Text(Vec<String>),
    /// One call of the named tool with [`TOOL_CALL_ARGUMENTS`].
    ToolCall(String),
}

/// Why the reply ended; each protocol has its own word for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The whole text was produced.
    Stop,
    /// The text was cut to the request's maximum output tokens.
    MaxTokens,
    /// The reply is a tool call.
    ToolCall,
}

/// A reply's content and finish reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub content: Content,
    pub finish: Finish,
}

/// Completion tokens counted for a tool call: one per argument fragment.
pub const TOOL_CALL_TOKENS: u64 = TOOL_CALL_FRAGMENTS.len() as u64;

impl Output {
    /// The reply of mock `name` to a request for `model`: a call of `tool_call` if set,
    /// otherwise the words (`chunks` of them if set), cut to `max_tokens` (one token per
    /// chunk; the finish is then [`Finish::MaxTokens`]). A tool call ignores `chunks` and
    /// `max_tokens`.
    pub fn new(
        name: &str,
        model: &str,
        chunks: Option<usize>,
        tool_call: Option<&str>,
        max_tokens: Option<u64>,
    ) -> Self {
        if let Some(tool) = tool_call {
            return Self {
                content: Content::ToolCall(tool.to_owned()),
                finish: Finish::ToolCall,
            };
        }
        let mut words = reply_words(name, model, chunks);
        let mut finish = Finish::Stop;
        if let Some(max) = max_tokens {
            let max = usize::try_from(max).unwrap_or(usize::MAX);
            if words.len() > max {
                words.truncate(max);
                finish = Finish::MaxTokens;
            }
        }
        Self {
            content: Content::Text(words),
            finish,
        }
    }

    /// Text chunks produced, or [`TOOL_CALL_TOKENS`] for a tool call.
    pub fn completion_tokens(&self) -> u64 {
        match &self.content {
            Content::Text(words) => words.len() as u64,
            Content::ToolCall(_) => TOOL_CALL_TOKENS,
        }
    }

    /// The reply text; empty for a tool call.
    pub fn text(&self) -> String {
        match &self.content {
            Content::Text(words) => words.concat(),
            Content::ToolCall(_) => String::new(),
        }
    }
}

/// The content chunks of a reply. Each word after the first carries its leading space, so
/// the joined chunks are the reply text.
pub fn reply_words(name: &str, model: &str, chunks: Option<usize>) -> Vec<String> {
    match chunks {
        None => vec![
            "Hello".to_owned(),
            " from".to_owned(),
            format!(" {name}!"),
            " You".to_owned(),
            " asked".to_owned(),
            format!(" {model}."),
        ],
        Some(n) => (0..n)
            .map(|i| {
                if i == 0 {
                    "w0".to_owned()
                } else {
                    format!(" w{i}")
                }
            })
            .collect(),
    }
}

/// Whitespace-separated words.
pub fn count_words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_reply_words_join_to_the_reply_text() {
        let words = reply_words("m1", "gpt-x", None);
        assert_eq!(
            words,
            ["Hello", " from", " m1!", " You", " asked", " gpt-x."]
        );
        assert_eq!(words.concat(), "Hello from m1! You asked gpt-x.");
        assert_eq!(reply_words("m1", "x", Some(3)), ["w0", " w1", " w2"]);
        assert!(reply_words("m1", "x", Some(0)).is_empty());
    }

    #[test]
    fn tool_call_arguments_fragments_and_value_agree() {
        assert_eq!(TOOL_CALL_FRAGMENTS.concat(), TOOL_CALL_ARGUMENTS);
        assert_eq!(
            serde_json::to_string(&TOOL_ARGUMENTS).unwrap(),
            TOOL_CALL_ARGUMENTS
        );
        for fragment in TOOL_CALL_FRAGMENTS {
            assert!(serde_json::from_str::<serde_json::Value>(fragment).is_err());
        }
    }

    #[test]
    fn max_tokens_cuts_text_but_not_a_tool_call() {
        let cut = Output::new("m1", "x", None, None, Some(2));
        assert_eq!(cut.text(), "Hello from");
        assert_eq!(cut.finish, Finish::MaxTokens);
        assert_eq!(cut.completion_tokens(), 2);

        let exact = Output::new("m1", "x", Some(2), None, Some(2));
        assert_eq!(exact.finish, Finish::Stop);

        let tool = Output::new("m1", "x", Some(9), Some("get_weather"), Some(1));
        assert_eq!(tool.content, Content::ToolCall("get_weather".into()));
        assert_eq!(tool.finish, Finish::ToolCall);
        assert_eq!(tool.completion_tokens(), 3);
        assert_eq!(tool.text(), "");
    }
}
