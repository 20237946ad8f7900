//! Google Gemini `generateContent` wire shapes (API version `v1beta`): the
//! request the gateway writes and the response, stream event and error it
//! reads. Only the fields the gateway uses; everything else in a provider
//! body is skipped by serde.
//!
//! Field names are Gemini's camelCase JSON names. Proto3 JSON leaves out
//! fields at their default value (a token count of 0 is absent), so a missing
//! count inside a present object means 0.
//!
//! Free-form JSON (schemas, call arguments, function results) is kept as raw
//! text: `serde_json::Value` would sort object keys, and Gemini follows the
//! key order of a schema when it writes structured output.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// `POST models/{model}:generateContent` body.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest {
    pub contents: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
}

/// One turn: `role` is `user` or `model` (absent in `systemInstruction`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub parts: Vec<Part>,
}

/// One part of a turn. Exactly one of the data members is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Set on thought summaries (only sent when thoughts are requested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    /// Opaque signature of the model's reasoning; must be sent back on the
    /// `functionCall` parts it came with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_data: Option<Blob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<FileData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_response: Option<FunctionResponse>,
}

impl Part {
    pub fn text(text: impl Into<String>) -> Part {
        Part {
            text: Some(text.into()),
            ..Part::default()
        }
    }
}

/// Inline bytes, base64-encoded.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    #[serde(default)]
    pub mime_type: String,
    #[serde(default)]
    pub data: String,
}

/// Data behind a URI (an HTTPS URL, a Files API URI, a YouTube URL).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub file_uri: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
    /// A JSON object; absent for a call without arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Box<RawValue>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
    /// Must be a JSON object.
    pub response: Box<RawValue>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub function_declarations: Vec<FunctionDeclaration>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionDeclaration {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The parameters as JSON Schema (mutually exclusive with the older
    /// OpenAPI-subset `parameters`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters_json_schema: Option<Box<RawValue>>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    pub function_calling_config: FunctionCallingConfig,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig {
    /// `AUTO`, `ANY` or `NONE`.
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_function_names: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_json_schema: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_config: Option<ThinkingConfig>,
}

impl GenerationConfig {
    /// Whether no member is set (the object is then left out of the request).
    pub fn is_empty(&self) -> bool {
        let GenerationConfig {
            stop_sequences,
            response_mime_type,
            response_json_schema,
            candidate_count,
            max_output_tokens,
            temperature,
            top_p,
            top_k,
            seed,
            presence_penalty,
            frequency_penalty,
            thinking_config,
        } = self;
        stop_sequences.is_none()
            && response_mime_type.is_none()
            && response_json_schema.is_none()
            && candidate_count.is_none()
            && max_output_tokens.is_none()
            && temperature.is_none()
            && top_p.is_none()
            && top_k.is_none()
            && seed.is_none()
            && presence_penalty.is_none()
            && frequency_penalty.is_none()
            && thinking_config.is_none()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    pub thinking_budget: u32,
}

/// A complete response, or one event of a `streamGenerateContent` stream
/// (same shape, with the parts produced since the previous event).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub candidates: Vec<Candidate>,
    #[serde(default)]
    pub prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    pub model_version: Option<String>,
    #[serde(default)]
    pub response_id: Option<String>,
    /// Set instead of the above when a stream fails after it started.
    #[serde(default)]
    pub error: Option<ErrorBody>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub index: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    #[serde(default)]
    pub block_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    #[serde(default)]
    pub prompt_token_count: Option<u64>,
    #[serde(default)]
    pub candidates_token_count: Option<u64>,
    #[serde(default)]
    pub total_token_count: Option<u64>,
    #[serde(default)]
    pub cached_content_token_count: Option<u64>,
    #[serde(default)]
    pub thoughts_token_count: Option<u64>,
    #[serde(default)]
    pub tool_use_prompt_token_count: Option<u64>,
}

/// `{"error": {...}}`; Gemini sometimes wraps it in a one-element array.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorEnvelope {
    #[serde(default)]
    pub error: Option<ErrorBody>,
}

/// Google's RPC status: `{"code":400,"message":"...","status":"INVALID_ARGUMENT","details":[...]}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient_details")]
    pub details: Vec<ErrorDetail>,
}

/// One entry of `details`: `ErrorInfo` (`reason`) or `BadRequest`
/// (`fieldViolations`); other kinds leave both empty.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub field_violations: Vec<FieldViolation>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FieldViolation {
    #[serde(default)]
    pub field: Option<String>,
}

/// `null` read as the type's default (an empty list).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `details` whose entries do not have the expected shape are skipped rather
/// than failing the whole error body.
fn lenient_details<'de, D>(d: D) -> Result<Vec<ErrorDetail>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw = Option::<Vec<Value>>::deserialize(d)?.unwrap_or_default();
    Ok(raw
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_serializes_in_camel_case_without_empty_members() {
        let req = GenerateContentRequest {
            contents: vec![Content {
                role: Some("user".into()),
                parts: vec![Part::text("hi")],
            }],
            generation_config: Some(GenerationConfig {
                max_output_tokens: Some(5),
                ..GenerationConfig::default()
            }),
            ..GenerateContentRequest::default()
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":5}})
        );
    }

    #[test]
    fn response_reads_parts_usage_and_ignores_unknown_fields() {
        let r: GenerateContentResponse = serde_json::from_str(
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"a","x":1},{"functionCall":{"name":"f","args":{"k":1}},"thoughtSignature":"s"}]},"finishReason":"STOP","safetyRatings":[]}],
                "usageMetadata":{"promptTokenCount":3,"totalTokenCount":3,"promptTokensDetails":[{"modality":"TEXT","tokenCount":3}]},
                "modelVersion":"gemini-2.5-flash","responseId":"r1"}"#,
        )
        .unwrap();
        let parts = &r.candidates[0].content.as_ref().unwrap().parts;
        assert_eq!(parts[0].text.as_deref(), Some("a"));
        assert_eq!(parts[1].function_call.as_ref().unwrap().name, "f");
        assert_eq!(parts[1].thought_signature.as_deref(), Some("s"));
        assert_eq!(r.usage_metadata.unwrap().candidates_token_count, None);
        assert_eq!(r.response_id.as_deref(), Some("r1"));
    }

    #[test]
    fn null_lists_read_as_empty() {
        let r: GenerateContentResponse = serde_json::from_str(
            r#"{"candidates":null,"promptFeedback":{"blockReason":"SAFETY"}}"#,
        )
        .unwrap();
        assert!(r.candidates.is_empty());
        let c: Content = serde_json::from_str(r#"{"role":"model","parts":null}"#).unwrap();
        assert!(c.parts.is_empty());
    }

    #[test]
    fn error_details_of_other_shapes_are_skipped() {
        let e: ErrorEnvelope = serde_json::from_str(
            r#"{"error":{"code":400,"message":"m","status":"INVALID_ARGUMENT","details":[
                {"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"},
                {"@type":"x","fieldViolations":"not a list"},
                {"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"contents[0]","description":"d"}]}]}}"#,
        )
        .unwrap();
        let b = e.error.unwrap();
        assert_eq!(b.details.len(), 2);
        assert_eq!(b.details[0].reason.as_deref(), Some("API_KEY_INVALID"));
        assert_eq!(
            b.details[1].field_violations[0].field.as_deref(),
            Some("contents[0]")
        );
    }
}
