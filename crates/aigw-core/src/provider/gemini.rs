//! Google Gemini: `{base}/models/{model}:generateContent`, or
//! `:streamGenerateContent?alt=sse` for streams; key in `x-goog-api-key`.

use crate::api::Operation;

pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";

pub fn auth_header(key: &str) -> (&'static str, String) {
    ("x-goog-api-key", key.to_string())
}

pub fn path(base_path: &str, op: Operation, model: &str, stream: bool) -> Option<String> {
    if op != Operation::ChatCompletions {
        return None;
    }
    let base = base_path.trim_end_matches('/');
    let model = model.strip_prefix("models/").unwrap_or(model);
    let model = super::encode_segment(model);
    Some(if stream {
        format!("{base}/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("{base}/models/{model}:generateContent")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_content_paths() {
        assert_eq!(
            path(
                "/v1beta",
                Operation::ChatCompletions,
                "gemini-2.5-flash",
                false
            )
            .unwrap(),
            "/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            path(
                "/v1beta",
                Operation::ChatCompletions,
                "models/gemini-2.5-pro",
                true
            )
            .unwrap(),
            "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        assert_eq!(path("/v1beta", Operation::Embeddings, "m", false), None);
    }
}
