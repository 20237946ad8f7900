//! Top-level members of a JSON object, with values kept as raw text.
//!
//! Lets the gateway change one member of a large body (the `model`, the
//! `stream_options`) and copy every other value byte for byte, without
//! building a tree of the whole document.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The members of a JSON object in document order.
#[derive(Debug)]
pub struct Members<'a> {
    pub members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Members<'a> {
    /// Parses `text` as one JSON object.
    pub fn parse(text: &'a [u8]) -> Result<Members<'a>, serde_json::Error> {
        serde_json::from_slice(text)
    }

    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.members.iter().any(|(k, _)| k == key)
    }

    /// Writes the object back, replacing or dropping members as `edit` says,
    /// then appending `extra` members. Values not edited are copied verbatim.
    pub fn write<F>(&self, capacity: usize, mut edit: F, extra: &[(&str, &str)]) -> Vec<u8>
    where
        F: FnMut(&str, &'a RawValue) -> Edit,
    {
        let mut out = Vec::with_capacity(capacity + 64);
        out.push(b'{');
        let mut first = true;
        let mut put = |out: &mut Vec<u8>, key: &str, value: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            write_json_string(out, key);
            out.push(b':');
            out.extend_from_slice(value.as_bytes());
        };
        for (key, value) in &self.members {
            match edit(key, value) {
                Edit::Keep => put(&mut out, key, value.get()),
                Edit::Replace(new) => put(&mut out, key, &new),
                Edit::Drop => {}
            }
        }
        for (key, value) in extra {
            put(&mut out, key, value);
        }
        out.push(b'}');
        out
    }
}

/// What to do with one member when writing an object back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    Keep,
    /// New raw JSON text for the value.
    Replace(String),
    Drop,
}

/// Appends `s` as a JSON string literal.
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // serde_json's escaping; writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_json_string(&mut out, s);
    String::from_utf8(out).unwrap_or_default()
}

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key, value));
                }
                Ok(Members { members })
            }
        }
        d.deserialize_map(V)
    }
}

/// Removes the whitespace between the tokens of a JSON text, leaving strings
/// and the order of members untouched (a serde round trip would sort keys,
/// and tool arguments are written in the order a model produced them).
/// `json` must be valid JSON (it comes from a parsed `RawValue`).
pub fn compact_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_values_byte_for_byte() {
        let body =
            br#"{"model":"a", "messages":[{"role":"user","content":"x\u00e9 \"q\""}],"n":1.50}"#;
        let m = Members::parse(body).unwrap();
        assert_eq!(m.members.len(), 3);
        let out = m.write(body.len(), |_, _| Edit::Keep, &[]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"model":"a","messages":[{"role":"user","content":"x\u00e9 \"q\""}],"n":1.50}"#
        );
    }

    #[test]
    fn replaces_drops_and_appends() {
        let body = br#"{"a":1,"b":2,"c":3}"#;
        let m = Members::parse(body).unwrap();
        let out = m.write(
            body.len(),
            |k, _| match k {
                "a" => Edit::Replace("\"x\"".into()),
                "b" => Edit::Drop,
                _ => Edit::Keep,
            },
            &[("d", "true")],
        );
        assert_eq!(out, br#"{"a":"x","c":3,"d":true}"#);
    }

    #[test]
    fn escaped_keys_survive() {
        let body = br#"{"a\"b":1}"#;
        let m = Members::parse(body).unwrap();
        assert_eq!(m.members[0].0, "a\"b");
        assert_eq!(m.write(0, |_, _| Edit::Keep, &[]), br#"{"a\"b":1}"#);
    }

    #[test]
    fn compacts_without_reordering_or_touching_strings() {
        assert_eq!(
            compact_json("{ \"b\" : 1,\n \"a\": \"x y\\\" z\", \"c\": [1, 2] }"),
            r#"{"b":1,"a":"x y\" z","c":[1,2]}"#
        );
    }

    #[test]
    fn rejects_non_objects() {
        assert!(Members::parse(b"[1]").is_err());
        assert!(Members::parse(b"{").is_err());
    }
}
