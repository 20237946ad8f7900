//! Token estimates made before a provider has counted anything: the prompt
//! side of a quota reservation.
//!
//! The estimate is simple: a quarter token per ASCII character (the usual
//! average for English text and code), a token per other character (most CJK
//! characters are a token or more), a few tokens per JSON object, and a flat
//! amount for an image, audio clip or file sent inline (a `data:` URL or a
//! long base64 string), whose size says little about its cost. It is an
//! estimate, not a bound: reservations settle to the provider's real count.

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Tokens counted for one image, audio clip or file.
pub const MEDIA_TOKENS: u64 = 1_000;

/// Tokens counted for each JSON object (a message, a content part, a tool).
const OBJECT_TOKENS: u64 = 3;

/// Strings at least this long made only of base64 characters are media.
const MEDIA_MIN_LEN: usize = 1_024;

/// True for inline media: a `data:` URL, or a long run of base64.
fn is_media(text: &str) -> bool {
    text.starts_with("data:")
        || (text.len() >= MEDIA_MIN_LEN
            && text.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_')
            }))
}

/// Tokens of a string of the prompt: its text, or [`MEDIA_TOKENS`] for media.
pub fn string_tokens(text: &str) -> u64 {
    if is_media(text) {
        MEDIA_TOKENS
    } else {
        text_tokens(text)
    }
}

/// Tokens of a piece of text.
pub fn text_tokens(text: &str) -> u64 {
    // Byte loops (no char decoding): a character is one lead byte; ASCII
    // bytes are below 0x80, other characters start with 0b11xxxxxx.
    let bytes = text.as_bytes();
    let ascii = bytes.iter().filter(|b| **b < 0x80).count() as u64;
    let other = bytes.iter().filter(|b| **b >= 0xC0).count() as u64;
    ascii.div_ceil(4) + other
}

/// Adds up the estimated tokens of the text a response carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputCount(pub u64);

impl OutputCount {
    pub fn add(&mut self, text: &str) {
        self.0 = self.0.saturating_add(text_tokens(text));
    }
}

/// The tokens of a request field read by [`crate::schema::openai::RequestPeek`].
pub trait PromptTokens {
    fn tokens(&self) -> u64;
}

impl PromptTokens for PromptSize {
    fn tokens(&self) -> u64 {
        self.0
    }
}

/// A skipped field counts nothing.
impl PromptTokens for IgnoredAny {
    fn tokens(&self) -> u64 {
        0
    }
}

/// The estimated tokens of a JSON value: its strings, objects and media.
/// Used for request fields such as `messages`, `system`, `input` or `tools`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PromptSize(pub u64);

impl<'de> Deserialize<'de> for PromptSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SizeVisitor).map(PromptSize)
    }
}

struct SizeVisitor;

impl<'de> Visitor<'de> for SizeVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, v: &str) -> Result<u64, E> {
        Ok(string_tokens(v))
    }

    fn visit_bool<E>(self, _: bool) -> Result<u64, E> {
        Ok(0)
    }

    fn visit_i64<E>(self, _: i64) -> Result<u64, E> {
        Ok(1)
    }

    fn visit_u64<E>(self, _: u64) -> Result<u64, E> {
        Ok(1)
    }

    fn visit_f64<E>(self, _: f64) -> Result<u64, E> {
        Ok(1)
    }

    fn visit_unit<E>(self) -> Result<u64, E> {
        Ok(0)
    }

    fn visit_none<E>(self) -> Result<u64, E> {
        Ok(0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut n = 0u64;
        while let Some(PromptSize(t)) = seq.next_element()? {
            n = n.saturating_add(t);
        }
        Ok(n)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut n = OBJECT_TOKENS;
        // Keys are structure, not prompt: skipped (a tool schema's property
        // names are counted through their descriptions and values).
        while map.next_key::<IgnoredAny>()?.is_some() {
            n = n.saturating_add(map.next_value::<PromptSize>()?.0);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(json: &str) -> u64 {
        serde_json::from_str::<PromptSize>(json).unwrap().0
    }

    #[test]
    fn text_counts_a_quarter_token_per_ascii_char_and_one_per_other() {
        assert_eq!(text_tokens(""), 0);
        assert_eq!(text_tokens("abcd"), 1);
        assert_eq!(text_tokens("abcde"), 2);
        assert_eq!(text_tokens("你好"), 2);
    }

    #[test]
    fn messages_count_their_text_and_a_little_per_object() {
        let n = size(r#"[{"role":"user","content":"Say hello to the world, please."}]"#);
        // "user" (1) + the text (32 chars: 8) + one object (3).
        assert_eq!(n, 1 + 8 + OBJECT_TOKENS);
    }

    #[test]
    fn media_counts_flat_whatever_its_size() {
        let big = "A".repeat(100_000);
        let n = size(&format!(
            r#"[{{"role":"user","content":[{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{big}"}}}}]}}]"#
        ));
        assert!((MEDIA_TOKENS..MEDIA_TOKENS + 50).contains(&n), "{n}");
        // Anthropic's base64 source, without a data: prefix.
        let n = size(&format!(
            r#"[{{"type":"image","source":{{"type":"base64","media_type":"image/png","data":"{big}"}}}}]"#
        ));
        assert!((MEDIA_TOKENS..MEDIA_TOKENS + 50).contains(&n), "{n}");
    }

    #[test]
    fn names_that_look_like_media_keys_are_ordinary_text() {
        // A tool whose parameters are called `source` and `file`.
        let n = size(
            r#"[{"type":"function","function":{"name":"copy","parameters":{"type":"object",
                "properties":{"source":{"type":"string"},"file":{"type":"string"}}}}}]"#,
        );
        assert!(n < 60, "{n}");
        // Long text with spaces or punctuation is text.
        let prose = "word ".repeat(1_000);
        assert_eq!(string_tokens(&prose), text_tokens(&prose));
    }

    #[test]
    fn escaped_strings_are_counted_too() {
        assert_eq!(size(r#""a\"b\nc\u00e9""#), 2 + 1);
    }
}
