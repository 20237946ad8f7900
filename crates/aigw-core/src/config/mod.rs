//! Filter configurations: the JSON each filter receives in Envoy's
//! `configuration` field. Two stages, both tested: `parse` checks the shape
//! (camelCase, unknown fields rejected), `compile` checks meaning and builds
//! the runtime structures. Every error names the field and the bad value.

use std::fmt;

pub mod consumer;
pub mod provider;
pub mod router;
pub mod url;

/// One configuration problem: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Path of the field, e.g. `models[2].route`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Every problem found, not only the first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError {
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Parses a filter's JSON configuration; the error names the location.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigErrors> {
    serde_json::from_slice(bytes).map_err(|e| {
        let mut errs = ConfigErrors::default();
        errs.push("", format!("invalid configuration JSON: {e}"));
        errs
    })
}

/// True for a route id that is safe as a header value and a stat name part.
pub fn is_valid_route_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// True for a provider or key name: letters, digits, `-`, `_`, `.`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_list_every_problem() {
        let mut errs = ConfigErrors::default();
        errs.push("a", "bad");
        errs.push("b[1]", "worse");
        assert_eq!(errs.to_string(), "a: bad; b[1]: worse");
        assert!(errs.into_result(()).is_err());
    }

    #[test]
    fn route_ids_and_names() {
        assert!(is_valid_route_id("m0"));
        assert!(is_valid_route_id("p:openai"));
        assert!(!is_valid_route_id("a b"));
        assert!(!is_valid_route_id(""));
        assert!(is_valid_name("mock-openai_1.x"));
        assert!(!is_valid_name("has/slash"));
    }
}
