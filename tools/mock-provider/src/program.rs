//! How a request is answered: the first matching queued rule, overridden field by field by
//! the request's own `x-mock-*` headers.

use std::collections::BTreeMap;
use std::sync::Mutex;

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

/// Format of an error body (status >= 400).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorFormat {
    /// OpenAI error envelope, `application/json`.
    #[default]
    Json,
    /// A small HTML page, `text/html`.
    Html,
    /// One line of plain text, `text/plain`.
    Text,
    /// No body at all (headers only), as some load balancers answer.
    Empty,
}

impl ErrorFormat {
    fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "html" => Some(Self::Html),
            "text" => Some(Self::Text),
            "empty" => Some(Self::Empty),
            _ => None,
        }
    }
}

/// Whether usage is reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageMode {
    /// Usage in the body, and in a usage chunk when the client asked for one.
    #[default]
    Include,
    /// Never any usage, as some servers do.
    Omit,
}

impl UsageMode {
    fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "include" => Some(Self::Include),
            "omit" => Some(Self::Omit),
            _ => None,
        }
    }
}

/// The resolved behaviour for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behavior {
    /// Reply with this status instead of 200.
    pub status: Option<u16>,
    /// Extra response headers, applied in order (later ones replace earlier ones).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub delay_ms: u64,
    /// Number of `w{i}` content chunks instead of the default reply words.
    pub chunks: Option<usize>,
    pub chunk_interval_ms: u64,
    /// Send this much (events, or bytes of a plain body), then abort the connection.
    pub cut_after: Option<usize>,
    /// Send this much (events, or bytes of a plain body), then end the body cleanly.
    pub end_after: Option<usize>,
    pub error_format: ErrorFormat,
    pub usage: UsageMode,
    /// Reply with one call of this tool instead of text.
    pub tool_call: Option<String>,
}

/// How a response is truncated on purpose: after `N` events of a stream, or `N` bytes of a
/// plain body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Abort the connection (`x-mock-cut-after`).
    Cut(usize),
    /// End the body cleanly, as if it were complete (`x-mock-end-after`).
    End(usize),
}

impl Behavior {
    /// The programmed truncation, if any. [`resolve`] never lets both be set.
    pub fn truncation(&self) -> Option<Truncation> {
        self.cut_after
            .map(Truncation::Cut)
            .or(self.end_after.map(Truncation::End))
    }
}

/// What a rule matches on; every field present must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMatch {
    /// Request headers (names case-insensitive, values compared exactly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<BTreeMap<String, String>>,
    /// The `model` of the request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The request path (without query) ends with this, e.g. `/embeddings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A queued rule, as posted to `/__mock/rules`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<RuleMatch>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub retry_after: Option<String>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub chunks: Option<usize>,
    #[serde(default)]
    pub chunk_interval_ms: Option<u64>,
    #[serde(default)]
    pub cut_after: Option<usize>,
    #[serde(default)]
    pub end_after: Option<usize>,
    #[serde(default)]
    pub error_format: Option<ErrorFormat>,
    #[serde(default)]
    pub usage: Option<UsageMode>,
    #[serde(default)]
    pub tool_call: Option<String>,
    /// Apply to at most this many matching requests; `None` = forever.
    #[serde(default)]
    pub times: Option<u64>,
}

/// A rule checked and ready to apply.
#[derive(Debug, Clone)]
struct CompiledRule {
    rule: Rule,
    match_model: Option<String>,
    match_path: Option<String>,
    match_headers: Vec<(HeaderName, String)>,
    response_headers: Vec<(HeaderName, HeaderValue)>,
    remaining: Option<u64>,
}

impl CompiledRule {
    fn compile(index: usize, rule: Rule) -> Result<Self, String> {
        if let Some(status) = rule.status {
            check_status(status).map_err(|e| format!("rules[{index}].status: {e}"))?;
        }
        if let Some(name) = &rule.tool_call {
            check_tool_name(name).map_err(|e| format!("rules[{index}].toolCall: {e}"))?;
        }
        if rule.cut_after.is_some() && rule.end_after.is_some() {
            return Err(format!(
                "rules[{index}]: cutAfter and endAfter cannot both be set ({TRUNCATION_CONFLICT})"
            ));
        }
        let matcher = rule.matcher.clone().unwrap_or_default();
        let match_headers = matcher
            .header
            .iter()
            .flatten()
            .map(|(name, value)| {
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    format!("rules[{index}].match.header: invalid header name {name:?}")
                })?;
                Ok((name, value.clone()))
            })
            .collect::<Result<_, String>>()?;
        let mut response_headers = Vec::new();
        for (name, value) in rule.headers.iter().flatten() {
            response_headers.push(
                response_header(name, value).map_err(|e| format!("rules[{index}].headers: {e}"))?,
            );
        }
        if let Some(value) = &rule.retry_after {
            response_headers.push(
                response_header("retry-after", value)
                    .map_err(|e| format!("rules[{index}].retryAfter: {e}"))?,
            );
        }
        Ok(Self {
            remaining: rule.times,
            rule,
            match_model: matcher.model,
            match_path: matcher.path,
            match_headers,
            response_headers,
        })
    }

    fn matches(&self, headers: &HeaderMap, path: &str, model: Option<&str>) -> bool {
        if let Some(want) = &self.match_model {
            if model != Some(want.as_str()) {
                return false;
            }
        }
        if let Some(suffix) = &self.match_path {
            if !path.ends_with(suffix.as_str()) {
                return false;
            }
        }
        self.match_headers.iter().all(|(name, want)| {
            headers
                .get_all(name)
                .iter()
                .any(|v| v.as_bytes() == want.as_bytes())
        })
    }

    fn apply_to(&self, b: &mut Behavior) {
        let r = &self.rule;
        b.status = r.status;
        b.headers.clone_from(&self.response_headers);
        b.delay_ms = r.delay_ms.unwrap_or(0);
        b.chunks = r.chunks;
        b.chunk_interval_ms = r.chunk_interval_ms.unwrap_or(0);
        b.cut_after = r.cut_after;
        b.end_after = r.end_after;
        b.error_format = r.error_format.unwrap_or_default();
        b.usage = r.usage.unwrap_or_default();
        b.tool_call.clone_from(&r.tool_call);
    }
}

fn check_status(status: u16) -> Result<(), String> {
    if (200..=999).contains(&status) {
        Ok(())
    } else {
        Err(format!("status {status} is not between 200 and 999"))
    }
}

fn check_tool_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        Err("the tool name must not be empty".to_owned())
    } else {
        Ok(())
    }
}

fn response_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("invalid header name {name:?}"))?;
    let value =
        HeaderValue::from_str(value).map_err(|_| format!("invalid header value {value:?}"))?;
    Ok((name, value))
}

/// A rule with its remaining uses, as `GET /__mock/rules` shows it.
#[derive(Debug, Serialize)]
pub struct RuleView {
    #[serde(flatten)]
    pub rule: Rule,
    pub remaining: Option<u64>,
}

/// The queued rules, shared by all connections.
#[derive(Debug, Default)]
pub struct RuleBook {
    rules: Mutex<Vec<CompiledRule>>,
}

impl RuleBook {
    /// Check and append rules; nothing is added if any rule is invalid.
    pub fn add(&self, rules: Vec<Rule>) -> Result<usize, String> {
        let compiled = rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| CompiledRule::compile(i, r))
            .collect::<Result<Vec<_>, _>>()?;
        let added = compiled.len();
        self.lock().extend(compiled);
        Ok(added)
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn list(&self) -> Vec<RuleView> {
        self.lock()
            .iter()
            .map(|c| RuleView {
                rule: c.rule.clone(),
                remaining: c.remaining,
            })
            .collect()
    }

    /// Apply the first matching rule with uses left (using one up) to `behavior`.
    fn apply_first_match(
        &self,
        headers: &HeaderMap,
        path: &str,
        model: Option<&str>,
        behavior: &mut Behavior,
    ) {
        let mut rules = self.lock();
        let found = rules
            .iter_mut()
            .find(|r| r.remaining != Some(0) && r.matches(headers, path, model));
        if let Some(rule) = found {
            if let Some(left) = rule.remaining.as_mut() {
                *left -= 1;
            }
            rule.apply_to(behavior);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<CompiledRule>> {
        // A poisoned lock only means another request panicked mid-update of a plain Vec;
        // the data is still usable.
        self.rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Request header names that program a single request.
pub mod header {
    pub const STATUS: &str = "x-mock-status";
    pub const ERROR_FORMAT: &str = "x-mock-error-format";
    pub const RETRY_AFTER: &str = "x-mock-retry-after";
    pub const DELAY_MS: &str = "x-mock-delay-ms";
    pub const CHUNKS: &str = "x-mock-chunks";
    pub const CHUNK_INTERVAL_MS: &str = "x-mock-chunk-interval-ms";
    pub const CUT_AFTER: &str = "x-mock-cut-after";
    pub const END_AFTER: &str = "x-mock-end-after";
    pub const USAGE: &str = "x-mock-usage";
    pub const TOOL_CALL: &str = "x-mock-tool-call";
}

/// The behaviour for a request: the first matching rule (if any), then each `x-mock-*`
/// header present replaces the corresponding field. A malformed header is an error for the
/// client, so a typo in a test does not go unnoticed.
pub fn resolve(
    rules: &RuleBook,
    headers: &HeaderMap,
    path: &str,
    model: Option<&str>,
) -> Result<Behavior, String> {
    let mut behavior = Behavior::default();
    rules.apply_first_match(headers, path, model, &mut behavior);
    apply_headers(headers, &mut behavior)?;
    Ok(behavior)
}

fn apply_headers(headers: &HeaderMap, b: &mut Behavior) -> Result<(), String> {
    if let Some(status) = parsed::<u16>(headers, header::STATUS)? {
        check_status(status).map_err(|e| format!("{}: {e}", header::STATUS))?;
        b.status = Some(status);
    }
    if let Some(v) = text(headers, header::ERROR_FORMAT)? {
        b.error_format = ErrorFormat::parse(v).ok_or_else(|| {
            format!(
                "{}: expected json, html, text or empty, got {v:?}",
                header::ERROR_FORMAT
            )
        })?;
    }
    if let Some(v) = headers.get(header::RETRY_AFTER) {
        let name = HeaderName::from_static("retry-after");
        b.headers.retain(|(n, _)| n != name);
        b.headers.push((name, v.clone()));
    }
    if let Some(ms) = parsed(headers, header::DELAY_MS)? {
        b.delay_ms = ms;
    }
    if let Some(n) = parsed(headers, header::CHUNKS)? {
        b.chunks = Some(n);
    }
    if let Some(ms) = parsed(headers, header::CHUNK_INTERVAL_MS)? {
        b.chunk_interval_ms = ms;
    }
    if let Some(n) = parsed(headers, header::CUT_AFTER)? {
        b.cut_after = Some(n);
    }
    if let Some(n) = parsed(headers, header::END_AFTER)? {
        b.end_after = Some(n);
    }
    if b.cut_after.is_some() && b.end_after.is_some() {
        // A rule cannot hold both (checked when it is added), so at least one is a header.
        let given = |name: &str, field: &str| {
            if headers.contains_key(name) {
                name.to_owned()
            } else {
                format!("the matching rule's {field}")
            }
        };
        return Err(format!(
            "{} conflicts with {} ({TRUNCATION_CONFLICT})",
            given(header::END_AFTER, "endAfter"),
            given(header::CUT_AFTER, "cutAfter"),
        ));
    }
    if let Some(v) = text(headers, header::USAGE)? {
        b.usage = UsageMode::parse(v)
            .ok_or_else(|| format!("{}: expected omit or include, got {v:?}", header::USAGE))?;
    }
    if let Some(v) = text(headers, header::TOOL_CALL)? {
        let name = v.trim();
        check_tool_name(name).map_err(|e| format!("{}: {e}", header::TOOL_CALL))?;
        b.tool_call = Some(name.to_owned());
    }
    Ok(())
}

/// Why cut-after and end-after cannot be combined.
const TRUNCATION_CONFLICT: &str =
    "cut-after aborts the connection, end-after ends the body cleanly: give at most one";

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, String> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| format!("{name}: value is not ASCII"))
        })
        .transpose()
}

fn parsed<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> Result<Option<T>, String> {
    text(headers, name)?
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| format!("{name}: expected a non-negative integer, got {v:?}"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> RuleBook {
        let book = RuleBook::default();
        book.add(serde_json::from_str(json).unwrap()).unwrap();
        book
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    const PATH: &str = "/v1/chat/completions";

    #[test]
    fn no_rules_and_no_headers_is_the_default_behavior() {
        let b = resolve(&RuleBook::default(), &HeaderMap::new(), PATH, Some("m")).unwrap();
        assert_eq!(b, Behavior::default());
    }

    #[test]
    fn first_matching_rule_wins_and_all_match_fields_must_match() {
        let book = rules(
            r#"[
            {"match": {"header": {"Authorization": "Bearer k1"}, "model": "a"}, "status": 401},
            {"match": {"header": {"authorization": "Bearer k1"}}, "status": 429},
            {"status": 503}
        ]"#,
        );
        let k1 = headers(&[("authorization", "Bearer k1")]);
        let k2 = headers(&[("authorization", "Bearer k2")]);
        let status = |h: &HeaderMap, model| resolve(&book, h, PATH, model).unwrap().status;
        assert_eq!(status(&k1, Some("a")), Some(401));
        assert_eq!(status(&k1, Some("b")), Some(429));
        assert_eq!(status(&k1, None), Some(429));
        assert_eq!(status(&k2, Some("a")), Some(503));
    }

    #[test]
    fn header_values_are_compared_exactly() {
        let book = rules(r#"[{"match": {"header": {"x-k": "v"}}, "status": 500}]"#);
        let status = |h: &[(&str, &str)]| resolve(&book, &headers(h), PATH, None).unwrap().status;
        assert_eq!(status(&[("x-k", "v")]), Some(500));
        assert_eq!(status(&[("x-k", "V")]), None);
        assert_eq!(status(&[("x-k", "v ")]), None);
        assert_eq!(status(&[("x-k", "w"), ("x-k", "v")]), Some(500));
        assert_eq!(status(&[]), None);
    }

    #[test]
    fn null_fields_mean_absent() {
        let book = rules(
            r#"[{"match": null, "status": 500, "headers": null, "delayMs": null, "chunks": null,
                 "chunkIntervalMs": null, "cutAfter": null, "endAfter": null, "errorFormat": null,
                 "usage": null, "toolCall": null, "times": null},
                {"match": {"header": null, "model": null}, "status": 501}]"#,
        );
        let b = resolve(&book, &HeaderMap::new(), PATH, None).unwrap();
        assert_eq!(
            b,
            Behavior {
                status: Some(500),
                ..Behavior::default()
            }
        );
    }

    #[test]
    fn path_matches_by_suffix() {
        let book = rules(r#"[{"match": {"path": "/embeddings"}, "status": 500}]"#);
        let status = |p| resolve(&book, &HeaderMap::new(), p, None).unwrap().status;
        assert_eq!(status("/v1/embeddings"), Some(500));
        assert_eq!(status(PATH), None);
    }

    #[test]
    fn times_limits_uses_then_later_rules_apply() {
        let book = rules(r#"[{"status": 429, "times": 2}, {"status": 500, "times": 1}]"#);
        let status = || {
            resolve(&book, &HeaderMap::new(), PATH, None)
                .unwrap()
                .status
        };
        assert_eq!(status(), Some(429));
        assert_eq!(status(), Some(429));
        assert_eq!(status(), Some(500));
        assert_eq!(status(), None);
        assert_eq!(
            book.list().iter().map(|r| r.remaining).collect::<Vec<_>>(),
            [Some(0), Some(0)]
        );
    }

    #[test]
    fn a_rule_that_does_not_match_keeps_its_uses() {
        let book = rules(r#"[{"match": {"model": "x"}, "status": 429, "times": 1}]"#);
        let status = |model| {
            resolve(&book, &HeaderMap::new(), PATH, model)
                .unwrap()
                .status
        };
        assert_eq!(status(Some("y")), None);
        assert_eq!(status(Some("x")), Some(429));
        assert_eq!(status(Some("x")), None);
    }

    #[test]
    fn request_headers_override_rule_fields() {
        let book = rules(
            r#"[{"status": 429, "headers": {"retry-after": "2", "x-extra": "1"},
                 "delayMs": 5, "chunks": 3, "chunkIntervalMs": 7, "cutAfter": 2,
                 "errorFormat": "html", "usage": "omit", "toolCall": "get_weather"}]"#,
        );
        let b = resolve(&book, &HeaderMap::new(), PATH, None).unwrap();
        assert_eq!(b.status, Some(429));
        assert_eq!(b.delay_ms, 5);
        assert_eq!(b.chunks, Some(3));
        assert_eq!(b.chunk_interval_ms, 7);
        assert_eq!(b.cut_after, Some(2));
        assert_eq!(b.error_format, ErrorFormat::Html);
        assert_eq!(b.usage, UsageMode::Omit);
        assert_eq!(b.tool_call.as_deref(), Some("get_weather"));

        let h = headers(&[
            ("x-mock-status", "503"),
            ("x-mock-retry-after", "9"),
            ("x-mock-delay-ms", "0"),
            ("x-mock-chunks", "1"),
            ("x-mock-chunk-interval-ms", "0"),
            ("x-mock-cut-after", "4"),
            ("x-mock-error-format", "text"),
            ("x-mock-usage", "include"),
            ("x-mock-tool-call", " lookup "),
        ]);
        let b = resolve(&book, &h, PATH, None).unwrap();
        assert_eq!(b.status, Some(503));
        assert_eq!(b.delay_ms, 0);
        assert_eq!(b.chunks, Some(1));
        assert_eq!(b.cut_after, Some(4));
        assert_eq!(b.error_format, ErrorFormat::Text);
        assert_eq!(b.usage, UsageMode::Include);
        assert_eq!(b.tool_call.as_deref(), Some("lookup"));
        let retry: Vec<_> = b
            .headers
            .iter()
            .filter(|(n, _)| n == "retry-after")
            .collect();
        assert_eq!(retry.len(), 1);
        assert_eq!(retry[0].1, "9");
        assert!(b.headers.iter().any(|(n, v)| n == "x-extra" && v == "1"));
    }

    #[test]
    fn malformed_headers_are_reported() {
        let book = RuleBook::default();
        for (name, value) in [
            ("x-mock-status", "abc"),
            ("x-mock-status", "99"),
            ("x-mock-delay-ms", "-1"),
            ("x-mock-error-format", "xml"),
            ("x-mock-usage", "maybe"),
            ("x-mock-tool-call", " "),
            ("x-mock-cut-after", "-1"),
            ("x-mock-end-after", "x"),
        ] {
            let err = resolve(&book, &headers(&[(name, value)]), PATH, None).unwrap_err();
            assert!(err.starts_with(name), "{err}");
        }
    }

    #[test]
    fn end_after_comes_from_a_rule_or_a_header() {
        let book = rules(r#"[{"match": {"model": "a"}, "endAfter": 2}]"#);
        let b = resolve(&book, &HeaderMap::new(), PATH, Some("a")).unwrap();
        assert_eq!(b.end_after, Some(2));
        assert_eq!(b.truncation(), Some(Truncation::End(2)));
        let h = headers(&[("x-mock-end-after", " 5 ")]);
        let b = resolve(&book, &h, PATH, Some("a")).unwrap();
        assert_eq!(b.truncation(), Some(Truncation::End(5)));
        let h = headers(&[("x-mock-cut-after", "4")]);
        let b = resolve(&RuleBook::default(), &h, PATH, None).unwrap();
        assert_eq!(b.truncation(), Some(Truncation::Cut(4)));
        assert_eq!(Behavior::default().truncation(), None);
    }

    #[test]
    fn cut_after_and_end_after_conflict() {
        let both = headers(&[("x-mock-cut-after", "1"), ("x-mock-end-after", "2")]);
        let err = resolve(&RuleBook::default(), &both, PATH, None).unwrap_err();
        assert!(
            err.starts_with("x-mock-end-after conflicts with x-mock-cut-after"),
            "{err}"
        );

        // A rule's field counts as given; the message says where each came from.
        let book = rules(
            r#"[{"match": {"model": "c"}, "cutAfter": 1},
                {"match": {"model": "e"}, "endAfter": 1}]"#,
        );
        let end = headers(&[("x-mock-end-after", "2")]);
        let err = resolve(&book, &end, PATH, Some("c")).unwrap_err();
        assert!(
            err.starts_with("x-mock-end-after conflicts with the matching rule's cutAfter"),
            "{err}"
        );
        let cut = headers(&[("x-mock-cut-after", "2")]);
        let err = resolve(&book, &cut, PATH, Some("e")).unwrap_err();
        assert!(
            err.starts_with("the matching rule's endAfter conflicts with x-mock-cut-after"),
            "{err}"
        );
        // The same header as the rule's field just overrides it.
        let b = resolve(&book, &end, PATH, Some("e")).unwrap();
        assert_eq!(b.truncation(), Some(Truncation::End(2)));

        let bad: Vec<Rule> = serde_json::from_str(r#"[{"cutAfter": 1, "endAfter": 2}]"#).unwrap();
        let err = RuleBook::default().add(bad).unwrap_err();
        assert!(
            err.starts_with("rules[0]: cutAfter and endAfter cannot both be set"),
            "{err}"
        );
    }

    #[test]
    fn invalid_rules_are_rejected_whole() {
        let book = RuleBook::default();
        let bad: Vec<Rule> =
            serde_json::from_str(r#"[{"status": 429}, {"headers": {"bad name": "v"}}]"#).unwrap();
        assert!(book.add(bad).unwrap_err().contains("rules[1].headers"));
        assert!(book.list().is_empty());
        assert!(serde_json::from_str::<Vec<Rule>>(r#"[{"stauts": 429}]"#).is_err());
        let bad: Vec<Rule> = serde_json::from_str(r#"[{"status": 42}]"#).unwrap();
        assert!(book.add(bad).is_err());
        let bad: Vec<Rule> = serde_json::from_str(r#"[{"toolCall": ""}]"#).unwrap();
        assert!(book.add(bad).unwrap_err().contains("rules[0].toolCall"));
    }
}
