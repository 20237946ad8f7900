//! Azure OpenAI: `{base}/openai/deployments/{deployment}/{operation}?api-version=V`,
//! key in `api-key`. The deployment is the model name sent (the target's
//! `model`, or the client's model when the target does not rename it).

use crate::api::Operation;

/// Default `api-version` (a generally available version).
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

pub fn auth_header(key: &str) -> (&'static str, String) {
    ("api-key", key.to_string())
}

pub fn path(base_path: &str, op: Operation, deployment: &str, api_version: &str) -> Option<String> {
    let suffix = op.provider_suffix()?;
    let base = base_path.trim_end_matches('/');
    Some(format!(
        "{base}/openai/deployments/{}{suffix}?api-version={}",
        super::encode_segment(deployment),
        super::encode_segment(api_version)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_paths() {
        assert_eq!(
            path("", Operation::ChatCompletions, "gpt-4o-prod", "2024-10-21").unwrap(),
            "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            path("/", Operation::Embeddings, "emb", "2024-10-21").unwrap(),
            "/openai/deployments/emb/embeddings?api-version=2024-10-21"
        );
        assert_eq!(path("", Operation::Messages, "x", "v"), None);
    }
}
