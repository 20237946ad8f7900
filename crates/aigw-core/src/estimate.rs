//! Token estimates made before a provider has counted anything: the prompt
//! side of a quota reservation.
//!
//! The estimate is deliberately simple and leans high: a quarter token per
//! ASCII character, a token per other character (most CJK characters are a
//! token or more), a few tokens per message, and a flat amount per image,
//! audio clip or file, whose bytes (base64) say little about their cost.
//! Reservations settle to the provider's real count, so leaning high costs a
//! consumer nothing but headroom while the request is in flight.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Tokens counted for one image, audio clip or file.
pub const MEDIA_TOKENS: u64 = 1_000;

/// Tokens counted for each JSON object (a message, a content part, a tool).
const OBJECT_TOKENS: u64 = 3;

/// Object keys whose values are media, counted at [`MEDIA_TOKENS`].
const MEDIA_KEYS: &[&str] = &["image_url", "input_audio", "source", "file", "inline_data"];

/// Tokens of a piece of text.
pub fn text_tokens(text: &str) -> u64 {
    let mut ascii = 0u64;
    let mut other = 0u64;
    for c in text.chars() {
        if c.is_ascii() {
            ascii += 1;
        } else {
            other += 1;
        }
    }
    ascii.div_ceil(4) + other
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
        Ok(text_tokens(v))
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
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let t = if MEDIA_KEYS.contains(&key.as_ref()) {
                map.next_value::<IgnoredAny>()?;
                MEDIA_TOKENS
            } else {
                map.next_value::<PromptSize>()?.0
            };
            n = n.saturating_add(t);
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
    }

    #[test]
    fn escaped_strings_are_counted_too() {
        assert_eq!(size(r#""a\"b\nc\u00e9""#), 2 + 1);
    }
}
