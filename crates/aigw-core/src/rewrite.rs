//! Request body rewrites made per attempt by the upstream filter: the model
//! name the target expects, and `stream_options.include_usage` so usage can be
//! counted. Every other member is copied byte for byte.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::schema::json_object::{json_string, Edit, Members};

/// How a target renames the model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ModelRewrite {
    /// Send the model the client named.
    #[default]
    Keep,
    /// Send this model instead.
    Set(String),
    /// Remove this prefix (`provider/`) from the client's model.
    StripPrefix(String),
}

impl ModelRewrite {
    /// The model to send, or `None` when it stays as the client named it.
    pub fn apply(&self, model: &str) -> Option<String> {
        match self {
            ModelRewrite::Keep => None,
            ModelRewrite::Set(name) if name == model => None,
            ModelRewrite::Set(name) => Some(name.clone()),
            ModelRewrite::StripPrefix(prefix) => {
                model.strip_prefix(prefix.as_str()).map(str::to_string)
            }
        }
    }

    pub fn is_keep(&self) -> bool {
        matches!(self, ModelRewrite::Keep)
    }
}

/// Edits for one attempt.
#[derive(Debug, Clone, Default)]
pub struct RequestEdits<'a> {
    pub model: Option<&'a ModelRewrite>,
    /// Ask the provider for the usage chunk (`stream_options.include_usage: true`).
    pub include_usage: bool,
}

impl RequestEdits<'_> {
    /// True when the body must be read and rewritten.
    pub fn needed(&self) -> bool {
        self.include_usage || self.model.is_some_and(|m| !m.is_keep())
    }
}

/// Rewrites an OpenAI request body. `Ok(None)` when nothing changed.
pub fn rewrite_openai_request(
    body: &[u8],
    edits: &RequestEdits<'_>,
) -> Result<Option<Vec<u8>>, ApiError> {
    if !edits.needed() {
        return Ok(None);
    }
    let members = Members::parse(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    let add_stream_options = edits.include_usage && !members.contains("stream_options");
    let extra: &[(&str, &str)] = if add_stream_options {
        &[("stream_options", r#"{"include_usage":true}"#)]
    } else {
        &[]
    };
    let mut changed = add_stream_options;
    let out = members.write(
        body.len(),
        |key, value| {
            let edit = match key {
                "model" => model_edit(edits.model, value.get()),
                "stream_options" if edits.include_usage => include_usage_edit(value.get()),
                _ => Edit::Keep,
            };
            changed |= edit != Edit::Keep;
            edit
        },
        extra,
    );
    Ok(changed.then_some(out))
}

fn model_edit(rewrite: Option<&ModelRewrite>, raw: &str) -> Edit {
    let Some(rewrite) = rewrite else {
        return Edit::Keep;
    };
    let Ok(current) = serde_json::from_str::<String>(raw) else {
        return Edit::Keep;
    };
    match rewrite.apply(&current) {
        Some(new) => Edit::Replace(json_string(&new)),
        None => Edit::Keep,
    }
}

fn include_usage_edit(raw: &str) -> Edit {
    let mut options: Map<String, Value> = serde_json::from_str(raw).unwrap_or_default();
    if options.get("include_usage") == Some(&Value::Bool(true)) {
        return Edit::Keep;
    }
    options.insert("include_usage".into(), Value::Bool(true));
    Edit::Replace(Value::Object(options).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(body: &str, model: Option<ModelRewrite>, include_usage: bool) -> Option<String> {
        let edits = RequestEdits {
            model: model.as_ref(),
            include_usage,
        };
        rewrite_openai_request(body.as_bytes(), &edits)
            .unwrap()
            .map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn renames_the_model_and_keeps_everything_else() {
        let out = rw(
            r#"{"model":"fast","messages":[{"role":"user","content":"h\u00e9"}],"temperature":0.70}"#,
            Some(ModelRewrite::Set("deepseek-chat".into())),
            false,
        );
        assert_eq!(
            out.unwrap(),
            r#"{"model":"deepseek-chat","messages":[{"role":"user","content":"h\u00e9"}],"temperature":0.70}"#
        );
    }

    #[test]
    fn strips_the_provider_prefix() {
        let out = rw(
            r#"{"model":"openai/gpt-4o"}"#,
            Some(ModelRewrite::StripPrefix("openai/".into())),
            false,
        );
        assert_eq!(out.unwrap(), r#"{"model":"gpt-4o"}"#);
    }

    #[test]
    fn nothing_to_do_is_none() {
        assert_eq!(
            rw(r#"{"model":"a"}"#, Some(ModelRewrite::Keep), false),
            None
        );
        assert_eq!(
            rw(
                r#"{"model":"a"}"#,
                Some(ModelRewrite::Set("a".into())),
                false
            ),
            None
        );
        assert_eq!(
            rw(
                r#"{"model":"a","stream":true,"stream_options":{"include_usage":true}}"#,
                None,
                true
            ),
            None
        );
    }

    #[test]
    fn adds_include_usage() {
        let out = rw(r#"{"model":"a","stream":true}"#, None, true);
        assert_eq!(
            out.unwrap(),
            r#"{"model":"a","stream":true,"stream_options":{"include_usage":true}}"#
        );
        let out = rw(
            r#"{"model":"a","stream":true,"stream_options":{"include_usage":false,"x":1}}"#,
            None,
            true,
        );
        let v: Value = serde_json::from_str(&out.unwrap()).unwrap();
        assert_eq!(
            v["stream_options"],
            serde_json::json!({"include_usage": true, "x": 1})
        );
    }

    #[test]
    fn both_edits_together() {
        let out = rw(
            r#"{"model":"x/m","stream":true}"#,
            Some(ModelRewrite::StripPrefix("x/".into())),
            true,
        );
        assert_eq!(
            out.unwrap(),
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#
        );
    }

    #[test]
    fn malformed_body_is_a_client_error() {
        let edits = RequestEdits {
            model: None,
            include_usage: true,
        };
        assert_eq!(
            rewrite_openai_request(b"{", &edits).unwrap_err().status,
            400
        );
    }
}
