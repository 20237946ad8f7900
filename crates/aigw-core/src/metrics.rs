//! The gateway's request metrics: names, labels, values. Pure: the filter
//! defines each metric by the name given here (once per worker) and records
//! the value.
//!
//! Labels are encoded in the metric name as `.<label>.<value>` pairs
//! (`aigw.requests_total.model.gpt-4o.….status.2xx`) and turned into
//! Prometheus labels by the `stats_tags` `aigw` renders. Values are
//! sanitized (anything but letters, digits, `-` and `_` becomes `_`, since a
//! `.` would end the value) and bounded: past [`DEFAULT_LABEL_CAP`] distinct
//! values of one label on a worker, new values fold into `other`.

use std::collections::{HashMap, HashSet};

use crate::usage::{Usage, UsageSource};

/// The value of a label past its cap.
pub const OTHER: &str = "other";
/// The value of a label that does not apply (no consumer, no provider…).
pub const NONE: &str = "none";
/// Distinct values kept per label and worker before folding into `other`.
pub const DEFAULT_LABEL_CAP: usize = 100;
/// Longest label value kept (longer ones are cut).
const MAX_VALUE_LEN: usize = 64;

/// Every label the gateway's metrics use, for the rendered `stats_tags`.
pub const LABELS: &[&str] = &[
    "model",
    "served_model",
    "provider",
    "consumer",
    "status",
    "type",
    "source",
    "key",
    "class",
    "how",
    "filter",
];

/// A label value safe inside a metric name. A value that is a label's name
/// gets a trailing `_`: in the name it would read as that label.
pub fn sanitize(value: &str) -> String {
    if value.is_empty() {
        return NONE.to_string();
    }
    let mut v: String = value
        .chars()
        .take(MAX_VALUE_LEN)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if LABELS.contains(&v.as_str()) {
        v.push('_');
    }
    v
}

/// Most metric series one worker defines; past it, new series are dropped
/// (Envoy never frees a stat).
pub const MAX_SERIES: usize = 5_000;

/// Bounds the distinct values of each label (per worker).
#[derive(Debug, Clone)]
pub struct LabelFold {
    cap: usize,
    seen: HashMap<&'static str, HashSet<String>>,
    kept: HashMap<&'static str, HashSet<String>>,
}

impl Default for LabelFold {
    fn default() -> Self {
        LabelFold::new(DEFAULT_LABEL_CAP)
    }
}

impl LabelFold {
    pub fn new(cap: usize) -> LabelFold {
        LabelFold {
            cap,
            seen: HashMap::new(),
            kept: HashMap::new(),
        }
    }

    /// Values that always keep their own name (configured models,
    /// consumers), outside the cap.
    pub fn keep(&mut self, label: &'static str, values: &[&str]) {
        let kept = self.kept.entry(label).or_default();
        for v in values {
            kept.insert(sanitize(v));
        }
    }

    /// The value to use for `label`: sanitized, or `other` once the label has
    /// `cap` other values.
    pub fn value(&mut self, label: &'static str, raw: &str) -> String {
        let v = sanitize(raw);
        if self.kept.get(label).is_some_and(|k| k.contains(&v)) {
            return v;
        }
        let seen = self.seen.entry(label).or_default();
        if seen.contains(&v) || v == NONE {
            return v;
        }
        if seen.len() >= self.cap {
            return OTHER.to_string();
        }
        seen.insert(v.clone());
        v
    }
}

/// How a metric is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Counter,
    Histogram,
}

/// One metric update: add `value` to a counter, or record it in a histogram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub name: String,
    pub kind: Kind,
    pub value: u64,
}

/// What the router filter knows of a request when it ends.
#[derive(Debug, Clone, Default)]
pub struct RequestSample<'a> {
    /// The model the client asked for.
    pub model: &'a str,
    /// The model the provider was asked for (`x-aigw-model`).
    pub served_model: &'a str,
    pub provider: &'a str,
    pub consumer: &'a str,
    /// The response status; `None` when no response started.
    pub status: Option<u16>,
    pub usage: Option<&'a Usage>,
    pub duration_ms: u64,
    /// Streams: request start to the first byte of the response body.
    pub ttft_ms: Option<u64>,
    /// Streams: first byte to the end of the stream.
    pub stream_ms: Option<u64>,
}

/// `2xx`, `4xx`, `5xx`…, or `none` without a response.
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(100..=199) => "1xx",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        _ => NONE,
    }
}

/// A request's label values, folded ([`LabelFold`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLabels {
    model: String,
    served: String,
    provider: String,
    consumer: String,
    status: &'static str,
}

impl RequestLabels {
    pub fn of(s: &RequestSample<'_>, fold: &mut LabelFold) -> RequestLabels {
        RequestLabels {
            model: fold.value("model", s.model),
            served: fold.value("served_model", s.served_model),
            provider: fold.value("provider", s.provider),
            consumer: fold.value("consumer", s.consumer),
            status: status_class(s.status),
        }
    }

    /// The name of `slot`'s metric for these labels.
    pub fn name(&self, slot: Slot) -> String {
        let RequestLabels {
            model,
            served,
            provider,
            consumer,
            status,
        } = self;
        match slot {
            Slot::Requests => format!(
                "aigw.requests_total.model.{model}.served_model.{served}.provider.{provider}.consumer.{consumer}.status.{status}"
            ),
            Slot::Tokens(kind, source) => format!(
                "aigw.tokens_total.model.{model}.served_model.{served}.provider.{provider}.consumer.{consumer}.type.{}.source.{}",
                kind.as_str(),
                source.as_str()
            ),
            Slot::Duration => {
                format!("aigw.request_duration_ms.model.{model}.provider.{provider}.consumer.{consumer}")
            }
            Slot::Ttft => format!(
                "aigw.time_to_first_token_ms.model.{model}.provider.{provider}.consumer.{consumer}"
            ),
            Slot::Stream => {
                format!("aigw.stream_duration_ms.model.{model}.provider.{provider}.consumer.{consumer}")
            }
        }
    }
}

/// The raw label values of a request, as one key (for a cache of the
/// metrics of each label combination, which skips folding and naming).
/// Values are joined by `\n`, which none contains: a model name with a
/// control character is refused, the others come from headers and config.
pub fn request_key(s: &RequestSample<'_>) -> String {
    let mut key = String::with_capacity(
        s.model.len() + s.served_model.len() + s.provider.len() + s.consumer.len() + 8,
    );
    for part in [s.model, s.served_model, s.provider, s.consumer] {
        key.push_str(part);
        key.push('\n');
    }
    key.push_str(status_class(s.status));
    key
}

/// Which of a request's metrics a value is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    Requests,
    Tokens(TokenKind, UsageSource),
    Duration,
    Ttft,
    Stream,
}

impl Slot {
    pub fn kind(self) -> Kind {
        match self {
            Slot::Requests | Slot::Tokens(..) => Kind::Counter,
            Slot::Duration | Slot::Ttft | Slot::Stream => Kind::Histogram,
        }
    }
}

/// The `type` label of `aigw_tokens_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Input,
    Output,
    Total,
    Cached,
    Reasoning,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Input => "input",
            TokenKind::Output => "output",
            TokenKind::Total => "total",
            TokenKind::Cached => "cached",
            TokenKind::Reasoning => "reasoning",
        }
    }
}

/// What one request adds to each of its metrics.
pub fn request_values(s: &RequestSample<'_>) -> Vec<(Slot, u64)> {
    let mut out = vec![(Slot::Requests, 1)];
    if let Some(u) = s.usage {
        for (kind, n) in [
            (TokenKind::Input, u.input_tokens),
            (TokenKind::Output, u.output_tokens),
            (TokenKind::Total, u.total_tokens),
            (TokenKind::Cached, u.cached_input_tokens),
            (TokenKind::Reasoning, u.reasoning_tokens),
        ] {
            if let Some(n) = n {
                out.push((Slot::Tokens(kind, u.source), n));
            }
        }
    }
    out.push((Slot::Duration, s.duration_ms));
    if let Some(ms) = s.ttft_ms {
        out.push((Slot::Ttft, ms));
    }
    if let Some(ms) = s.stream_ms {
        out.push((Slot::Stream, ms));
    }
    out
}

/// The updates for one request.
pub fn request_updates(s: &RequestSample<'_>, fold: &mut LabelFold) -> Vec<Update> {
    let labels = RequestLabels::of(s, fold);
    request_values(s)
        .into_iter()
        .map(|(slot, value)| Update {
            name: labels.name(slot),
            kind: slot.kind(),
            value,
        })
        .collect()
}

/// `aigw.fallbacks_total.model.<m>.provider.<p>`: an attempt that moved along
/// a fallback chain to this provider.
pub fn fallback_name(fold: &mut LabelFold, model: &str, provider: &str) -> String {
    format!(
        "aigw.fallbacks_total.model.{}.provider.{}",
        fold.value("model", model),
        fold.value("provider", provider)
    )
}

/// `aigw.streams_interrupted_total.provider.<p>.how.<ended_early|reset>`:
/// a stream that started and did not reach its end event.
pub fn interrupted_name(fold: &mut LabelFold, provider: &str, ended_early: bool) -> String {
    let how = if ended_early { "ended_early" } else { "reset" };
    format!(
        "aigw.streams_interrupted_total.provider.{}.how.{how}",
        fold.value("provider", provider)
    )
}

/// `aigw.retries_total.provider.<p>`: an attempt on another key of the
/// same provider.
pub fn retry_name(fold: &mut LabelFold, provider: &str) -> String {
    format!(
        "aigw.retries_total.provider.{}",
        fold.value("provider", provider)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_sanitized_and_bounded() {
        assert_eq!(sanitize("gemini-2.5-flash"), "gemini-2_5-flash");
        assert_eq!(sanitize("a/b c"), "a_b_c");
        assert_eq!(sanitize(""), "none");
        assert_eq!(sanitize(&"x".repeat(100)).len(), 64);
        let mut f = LabelFold::new(2);
        assert_eq!(f.value("model", "a"), "a");
        assert_eq!(f.value("model", "b"), "b");
        assert_eq!(f.value("model", "c"), "other");
        assert_eq!(f.value("model", "a"), "a");
        // Each label has its own budget.
        assert_eq!(f.value("provider", "c"), "c");
        // Configured values never fold.
        f.keep("model", &["gpt-4o"]);
        assert_eq!(f.value("model", "gpt-4o"), "gpt-4o");
    }

    #[test]
    fn the_cache_key_tells_every_label_combination_apart() {
        let base = RequestSample {
            model: "a",
            served_model: "b",
            provider: "c",
            consumer: "d",
            status: Some(200),
            ..RequestSample::default()
        };
        let mut keys = std::collections::HashSet::new();
        for s in [
            base.clone(),
            RequestSample {
                model: "x",
                ..base.clone()
            },
            RequestSample {
                served_model: "x",
                ..base.clone()
            },
            RequestSample {
                provider: "x",
                ..base.clone()
            },
            RequestSample {
                consumer: "x",
                ..base.clone()
            },
            RequestSample {
                status: Some(500),
                ..base.clone()
            },
            RequestSample {
                status: None,
                ..base.clone()
            },
        ] {
            assert!(keys.insert(request_key(&s)), "{s:?}");
        }
        // Values that are not labels do not split the key.
        let other = RequestSample {
            duration_ms: 99,
            ttft_ms: Some(1),
            ..base.clone()
        };
        assert_eq!(request_key(&other), request_key(&base));
    }

    #[test]
    fn a_value_named_like_a_label_cannot_pose_as_one() {
        for label in LABELS {
            assert_eq!(sanitize(label), format!("{label}_"));
        }
        let s = RequestSample {
            model: "provider",
            served_model: "status",
            provider: "consumer",
            consumer: "type",
            status: Some(200),
            ..RequestSample::default()
        };
        let name = &request_updates(&s, &mut LabelFold::default())[0].name;
        assert_eq!(
            name,
            "aigw.requests_total.model.provider_.served_model.status_.provider.consumer_.consumer.type_.status.2xx"
        );
        // Each `.<label>.` appears once, so each tag's regex finds its own.
        for label in ["model", "served_model", "provider", "consumer", "status"] {
            assert_eq!(name.matches(&format!(".{label}.")).count(), 1, "{label}");
        }
    }

    #[test]
    fn a_request_gives_a_count_its_tokens_and_its_timings() {
        let usage = Usage {
            input_tokens: Some(3),
            output_tokens: Some(6),
            total_tokens: Some(9),
            ..Usage::default()
        };
        let s = RequestSample {
            model: "chat",
            served_model: "deepseek-chat",
            provider: "deepseek",
            consumer: "",
            status: Some(200),
            usage: Some(&usage),
            duration_ms: 12,
            ttft_ms: Some(3),
            stream_ms: Some(9),
        };
        let u = request_updates(&s, &mut LabelFold::default());
        let names: Vec<&str> = u.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(
            names[0],
            "aigw.requests_total.model.chat.served_model.deepseek-chat.provider.deepseek.consumer.none.status.2xx"
        );
        assert!(names.contains(
            &"aigw.tokens_total.model.chat.served_model.deepseek-chat.provider.deepseek.consumer.none.type.output.source.reported"
        ));
        assert_eq!(
            u.iter()
                .filter(|u| u.name.starts_with("aigw.tokens_total"))
                .count(),
            3
        );
        assert!(u.contains(&Update {
            name: "aigw.time_to_first_token_ms.model.chat.provider.deepseek.consumer.none".into(),
            kind: Kind::Histogram,
            value: 3
        }));
        assert_eq!(u.len(), 1 + 3 + 3);
        assert_eq!(status_class(None), "none");
        assert_eq!(status_class(Some(429)), "4xx");
    }
}
