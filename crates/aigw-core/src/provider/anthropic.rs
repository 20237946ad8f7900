//! Anthropic: `{base}/v1/messages`, key in `x-api-key`, `anthropic-version`
//! on every request. The base URL is the one Anthropic's SDKs take.

use crate::api::Operation;

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// `anthropic-version` sent when the client sent none.
pub const DEFAULT_VERSION: &str = "2023-06-01";

pub fn auth_header(key: &str) -> (&'static str, String) {
    ("x-api-key", key.to_string())
}

pub fn path(base_path: &str, op: Operation) -> Option<String> {
    let base = base_path.trim_end_matches('/');
    match op {
        Operation::Messages => Some(format!("{base}/v1/messages")),
        Operation::CountTokens => Some(format!("{base}/v1/messages/count_tokens")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_paths() {
        assert_eq!(path("", Operation::Messages).unwrap(), "/v1/messages");
        assert_eq!(
            path("/proxy/", Operation::CountTokens).unwrap(),
            "/proxy/v1/messages/count_tokens"
        );
        assert_eq!(path("", Operation::ChatCompletions), None);
    }
}
