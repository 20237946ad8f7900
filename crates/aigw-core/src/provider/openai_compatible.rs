//! OpenAI and OpenAI-compatible servers: `Authorization: Bearer <key>`, and
//! the operation's path appended to the base URL's path (which normally ends
//! in `/v1`, e.g. `https://dashscope.aliyuncs.com/compatible-mode/v1`).

use crate::api::Operation;

pub fn auth_header(key: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {key}"))
}

pub fn path(base_path: &str, op: Operation) -> Option<String> {
    let suffix = op.provider_suffix()?;
    let base = base_path.trim_end_matches('/');
    Some(format!("{base}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_base_url() {
        assert_eq!(
            path("/v1", Operation::ChatCompletions).unwrap(),
            "/v1/chat/completions"
        );
        assert_eq!(
            path("/compatible-mode/v1/", Operation::Embeddings).unwrap(),
            "/compatible-mode/v1/embeddings"
        );
        assert_eq!(path("", Operation::Completions).unwrap(), "/completions");
        assert_eq!(path("/v1", Operation::ListModels), None);
    }

    #[test]
    fn bearer_auth() {
        assert_eq!(
            auth_header("sk-1"),
            ("authorization", "Bearer sk-1".to_string())
        );
    }
}
