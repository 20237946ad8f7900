//! Per-request context of the router filter.

use std::rc::Rc;

use aigw_core::api::Operation;
use aigw_core::body::BoundedBody;
use aigw_core::config::router::RouterPlan;
use aigw_core::error::{ApiError, ClientApi};
use aigw_core::flow::consumer::{self, Ending};
use aigw_core::flow::router::{self, HeadersDecision, RouteDecision};
use aigw_core::handoff::Handoff;
use aigw_core::headers::{self, StreamMode};
use aigw_core::metrics::RequestSample;
use aigw_core::quota::{self, RateStatus, Reservation};
use aigw_core::stream::{
    anthropic_early_end, openai_early_end, AnthropicStream, ChunkOutput, OpenAiStream,
};
use aigw_core::usage::Usage;
use aigw_core::usage::{self, UsageSource};
use aigw_wasm::Headers;
use proxy_wasm::traits::{Context, HttpContext};

use crate::root::RouterMetrics;
use proxy_wasm::types::Action;

/// Largest non-streamed response body copied to read its usage (8 MiB).
const MAX_USAGE_BODY: usize = 8 * 1024 * 1024;

enum Phase {
    /// Waiting for request headers.
    Start,
    /// Headers accepted; reading the body of this operation.
    ReadingBody(Operation),
    /// Routed and forwarded.
    Forwarded(RouteDecision),
    /// Answered locally.
    Replied,
}

#[derive(Default)]
enum Response {
    /// Not read (local replies, errors, responses without usage).
    #[default]
    Ignored,
    /// An OpenAI stream, read (and edited) event by event.
    Stream(OpenAiStream),
    /// An Anthropic stream, read event by event, never edited.
    AnthropicStream(AnthropicStream),
    /// A JSON body, copied to read usage at its end.
    Json(BoundedBody, ClientApi),
}

/// What an admitted request holds from its consumer's budget until it ends.
struct Hold {
    reservation: Reservation,
    /// What is left of the budget, told to the client in `x-ratelimit-*`.
    status: RateStatus,
}

/// The response as the filter saw it (all of it is for the end of the
/// request: settlement, logs, metrics).
#[derive(Default)]
struct Answer {
    /// The response status, once the response has started.
    status: Option<u16>,
    response: Response,
    /// Reported by the provider, or estimated by the gateway.
    usage: Option<Usage>,
    /// Whether the response reached its proper end (a JSON body read whole,
    /// `[DONE]`, `message_stop`).
    complete: bool,
    /// The response body reached its end (not reset).
    body_ended: bool,
    /// The provider that answered (`x-aigw-provider`), for logs and metrics.
    provider: Option<String>,
    /// The model it was asked for (`x-aigw-model`).
    served_model: Option<String>,
    /// The response is a stream.
    streaming: bool,
    /// When the first byte of a streamed response went out.
    first_byte_ms: Option<u64>,
    /// When the first token went out (the first chunk with text: a
    /// role-only first chunk does not count).
    first_token_ms: Option<u64>,
}

pub struct RouterHttp {
    id: u32,
    plan: Rc<RouterPlan>,
    phase: Phase,
    /// The caller's index in `plan.consumers`, once its key is known.
    consumer: Option<usize>,
    /// Values of the headers canary splits are sticky on.
    sticky_headers: Vec<(String, String)>,
    /// What the provider filter of every attempt gets: the client's path and
    /// Anthropic headers from the request headers, the rest once routed (an
    /// empty `model` until then).
    handoff: Handoff,
    hold: Option<Hold>,
    /// What came back, as it came.
    answer: Answer,
    metrics: Rc<RouterMetrics>,
    /// When the request arrived (milliseconds since the epoch).
    start_ms: u64,
    /// The prompt's estimated tokens, for a response without usage.
    prompt_tokens: u64,
}

impl RouterHttp {
    pub fn new(id: u32, plan: Rc<RouterPlan>, metrics: Rc<RouterMetrics>) -> Self {
        RouterHttp {
            id,
            plan,
            phase: Phase::Start,
            consumer: None,
            sticky_headers: Vec::new(),
            handoff: Handoff::default(),
            hold: None,
            answer: Answer::default(),
            metrics,
            start_ms: 0,
            prompt_tokens: 0,
        }
    }

    fn fail(&mut self, err: &ApiError, api: ClientApi) -> Action {
        self.fail_with(err, api, &[])
    }

    fn fail_with(&mut self, err: &ApiError, api: ClientApi, headers: &[(&str, &str)]) -> Action {
        log::debug!("[{}] {} {}: {}", self.id, err.status, err.code, err.message);
        self.phase = Phase::Replied;
        aigw_wasm::send_json_with(self, err.status, &err.body(api), headers);
        Action::Pause
    }

    /// Identifies the caller by its key; `Err` when it must be refused.
    fn authenticate(&mut self, path: &str, headers: &Headers) -> Result<(), Action> {
        if !self.plan.consumers.required() {
            return Ok(());
        }
        let custom = self
            .plan
            .consumers
            .key_header()
            .and_then(|h| headers.get(h));
        match consumer::authenticate(
            &self.plan,
            custom,
            headers.get("authorization"),
            headers.get("x-api-key"),
        ) {
            Ok(index) => {
                self.consumer = index;
                if let Some(c) = index.and_then(|i| self.plan.consumers.get(i)) {
                    aigw_wasm::set_request_property(self, headers::property::CONSUMER, &c.name);
                }
                Ok(())
            }
            Err(err) => {
                let api = router::api_of_path(path);
                let challenge = match api {
                    ClientApi::OpenAi => "Bearer",
                    ClientApi::Anthropic => "x-api-key",
                };
                Err(self.fail_with(&err, api, &[("www-authenticate", challenge)]))
            }
        }
    }

    /// Reserves the request's tokens from its consumer's budget; `Err` when
    /// the budget refuses (or cannot be read).
    fn reserve(&mut self, decision: &RouteDecision) -> Result<(), Action> {
        let plan = Rc::clone(&self.plan);
        let Some(c) = self.consumer.and_then(|i| plan.consumers.get(i)) else {
            return Ok(());
        };
        if c.limits.is_empty() {
            return Ok(());
        }
        let api = decision.op.client_api();
        let now = aigw_wasm::now_ms(self);
        match quota::reserve(
            &aigw_wasm::SharedData,
            c.ledger_key(),
            &c.limits,
            decision.reserve_tokens,
            now,
        ) {
            Ok(Ok(grant)) => {
                log::debug!(
                    "[{}] consumer {} reserved {} tokens",
                    self.id,
                    c.name,
                    decision.reserve_tokens
                );
                self.hold = Some(Hold {
                    reservation: grant.reservation,
                    status: grant.status,
                });
                Ok(())
            }
            Ok(Err(denial)) => {
                let err = consumer::denial_error(&c.name, &denial);
                let mut extra = consumer::rate_limit_headers(&denial.status);
                if let Some(secs) = consumer::retry_after(&denial) {
                    extra.push(("retry-after", secs));
                }
                let extra: Vec<(&str, &str)> =
                    extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
                Err(self.fail_with(&err, api, &extra))
            }
            Err(e) => {
                log::warn!("[{}] consumer {}: quota store: {e}", self.id, c.name);
                let err = ApiError::unavailable(
                    "quota_unavailable",
                    "The gateway could not check this key's quota; try again.",
                );
                Err(self.fail_with(&err, api, &[("retry-after", "1")]))
            }
        }
    }

    /// A stream that did not reach its end is logged and counted, whether it
    /// ended early (the client got an error event) or was reset (Envoy cut
    /// the client's stream too: no filter can write to it any more).
    fn record_stream_end(&self) {
        if !self.answer.streaming || self.answer.complete {
            return;
        }
        if !self.answer.body_ended && aigw_wasm::response_code_details().contains("downstream") {
            log::debug!("[{}] the client left before the stream ended", self.id);
            return;
        }
        let provider = self.answer.provider.as_deref().unwrap_or("none");
        let how = if self.answer.body_ended {
            "ended without its end event; the client got an error event"
        } else {
            "was reset before its end; the client's stream was reset"
        };
        log::info!("[{}] stream from provider {provider} {how}", self.id);
        self.metrics
            .stream_interrupted(provider, self.answer.body_ended);
    }

    /// Estimated tokens of the text the response carried so far.
    fn output_so_far(&self) -> u64 {
        match &self.answer.response {
            Response::Stream(s) => s.output_estimate(),
            Response::AnthropicStream(s) => s.output_estimate(),
            Response::Json(..) | Response::Ignored => 0,
        }
    }

    fn stream_usage_so_far(&self) -> Option<Usage> {
        let reported = match &self.answer.response {
            Response::Stream(s) => s.usage().cloned(),
            Response::AnthropicStream(s) => s.usage(),
            Response::Json(..) | Response::Ignored => return None,
        };
        Some(Usage::or_estimate(
            reported,
            self.prompt_tokens,
            self.output_so_far(),
        ))
    }

    /// The token counts for the access log, in filter state.
    fn log_usage_properties(&self) {
        let Some(u) = &self.answer.usage else { return };
        for (property, n) in [
            (headers::property::INPUT_TOKENS, u.input_tokens),
            (headers::property::OUTPUT_TOKENS, u.output_tokens),
            (headers::property::TOTAL_TOKENS, u.total_tokens),
        ] {
            if let Some(n) = n {
                aigw_wasm::set_request_property(self, property, &n.to_string());
            }
        }
        aigw_wasm::set_request_property(self, headers::property::TOKENS_SOURCE, u.source.as_str());
    }

    /// The request's metrics: count, tokens, timings.
    fn record_request(&self) {
        let now = aigw_wasm::now_ms(self);
        let consumer = self
            .consumer
            .and_then(|i| self.plan.consumers.get(i))
            .map_or("", |c| c.name.as_str());
        // The gateway's own replies and failed answers carry no tokens; a
        // stream that never ended carries what it reported or streamed.
        let sample = RequestSample {
            model: &self.handoff.model,
            served_model: self.answer.served_model.as_deref().unwrap_or(""),
            provider: self.answer.provider.as_deref().unwrap_or(""),
            consumer,
            status: self.answer.status,
            usage: self.answer.usage.as_ref(),
            duration_ms: now.saturating_sub(self.start_ms),
            ttft_ms: self
                .answer
                .first_token_ms
                .map(|t| t.saturating_sub(self.start_ms)),
            stream_ms: self
                .answer
                .first_byte_ms
                .filter(|_| self.answer.body_ended)
                .map(|t| now.saturating_sub(t)),
        };
        self.metrics.request(&sample);
    }

    /// Releases the reservation and charges what the request used.
    fn settle(&mut self) {
        let Some(hold) = self.hold.take() else {
            return;
        };
        let plan = Rc::clone(&self.plan);
        let Some(c) = self.consumer.and_then(|i| plan.consumers.get(i)) else {
            return;
        };
        // Why a failed request ended decides its charge; a success needs no
        // reason (one host call saved per request).
        let details = if self.answer.status.is_some_and(|s| s >= 400) {
            aigw_wasm::response_code_details()
        } else {
            String::new()
        };
        // Only what the provider reported settles a budget; the gateway's own
        // estimate does not (the reservation stands instead).
        let reported = self
            .answer
            .usage
            .as_ref()
            .filter(|u| u.source == UsageSource::Reported);
        let ending = match self.answer.status {
            None => Ending::NoResponse,
            Some(status) => Ending::Responded {
                status,
                usage: reported,
                complete: self.answer.complete,
                details: &details,
            },
        };
        let used = consumer::settled_tokens(hold.reservation.tokens, ending);
        let now = aigw_wasm::now_ms(self);
        match quota::settle(
            &aigw_wasm::SharedData,
            c.ledger_key(),
            &c.limits,
            &hold.reservation,
            used,
            now,
        ) {
            Ok(()) => log::debug!(
                "[{}] consumer {} settled {} of {} reserved tokens",
                self.id,
                c.name,
                used,
                hold.reservation.tokens
            ),
            Err(e) => log::warn!(
                "[{}] consumer {}: settlement of {used} tokens lost: {e}",
                self.id,
                c.name
            ),
        }
    }
}

impl Context for RouterHttp {}

impl HttpContext for RouterHttp {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        self.start_ms = aigw_wasm::now_ms(self);
        // Nothing the client sends may pose as the gateway's own decisions:
        // internal headers go first, before anything is read.
        let all = aigw_wasm::take_request_headers(self, false, None);
        let method = all.get(":method").unwrap_or_default().to_string();
        let path = all.get(":path").unwrap_or_default().to_string();
        // The client's path, for the access log (the provider filter rewrites `:path`).
        aigw_wasm::set_request_property(self, headers::property::CLIENT_PATH, &path);
        self.handoff.client_path = path.clone();
        self.handoff.anthropic_version = all.get("anthropic-version").map(str::to_string);
        self.handoff.anthropic_beta = all.get("anthropic-beta").map(str::to_string);
        if let Err(action) = self.authenticate(&path, &all) {
            return action;
        }
        // The client's credentials never go further (a consumer's key is read).
        for name in headers::CLIENT_CREDENTIALS
            .iter()
            .copied()
            .chain(self.plan.consumers.key_header())
        {
            if all.get(name).is_some() {
                self.set_http_request_header(name, None);
            }
        }
        let content_type = all.get("content-type");
        let content_length = all.get("content-length");
        let decision = router::on_request_headers(
            &self.plan,
            self.consumer,
            &method,
            &path,
            content_type,
            content_length,
            end_of_stream,
        );
        match decision {
            HeadersDecision::Reply { status, body } => {
                self.phase = Phase::Replied;
                aigw_wasm::send_json(self, status, &body);
                Action::Pause
            }
            HeadersDecision::Error(err, api) => self.fail(&err, api),
            HeadersDecision::ReadBody(op) => {
                self.phase = Phase::ReadingBody(op);
                for name in &self.plan.sticky_headers {
                    if let Some(v) = all.get(name) {
                        self.sticky_headers.push((name.clone(), v.to_string()));
                    }
                }
                // Holds the headers (and routing) until the body has been read.
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Phase::ReadingBody(op) = self.phase else {
            return Action::Continue;
        };
        if let Err(err) = router::check_body_size(&self.plan, body_size) {
            return self.fail(&err, op.client_api());
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        match router::route_body(&self.plan, self.consumer, op, &body, &self.sticky_headers) {
            Ok(decision) => {
                self.handoff.model = decision.model.clone();
                aigw_wasm::set_request_property(self, headers::property::MODEL, &decision.model);
                self.prompt_tokens = decision.prompt_tokens;
                if let Err(action) = self.reserve(&decision) {
                    return action;
                }
                // The header drives Envoy's route match; filter state carries the
                // decisions to the provider filter of every attempt.
                self.set_http_request_header(headers::ROUTE, Some(&decision.route));
                // Every attempt restores what the client sent, whatever an
                // earlier attempt (another provider) did to the shared headers.
                self.handoff.route = decision.route.clone();
                self.handoff.stream = decision.stream.map(|m| m.as_header().to_string());
                self.handoff.request_id = format!("{:x}-{:x}", aigw_wasm::now_ns(self), self.id);
                self.handoff.body_length = u64::try_from(body_size).unwrap_or(u64::MAX);
                let handoff = self.handoff.to_bytes();
                self.set_property(vec![headers::property::HANDOFF], Some(&handoff));
                if let Ok(value) = std::str::from_utf8(&handoff) {
                    self.set_http_request_header(headers::HANDOFF, Some(value));
                }
                // Envoy's own replies are OpenAI-shaped unless this says otherwise.
                let api = decision.op.client_api();
                if api != ClientApi::OpenAi {
                    self.set_http_request_header(headers::CLIENT_API, Some(api.as_str()));
                }
                log::debug!(
                    "[{}] model {:?} -> route {}",
                    self.id,
                    decision.model,
                    decision.route
                );
                self.phase = Phase::Forwarded(decision);
                Action::Continue
            }
            Err(err) => self.fail(&err, op.client_api()),
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let response = aigw_wasm::response_headers(self);
        let status = response.status();
        self.answer.status = Some(status);
        let Phase::Forwarded(decision) = &self.phase else {
            return Action::Continue;
        };
        self.answer.provider = response.get(headers::SERVED_BY).map(str::to_string);
        self.answer.served_model = response.get(headers::SERVED_MODEL).map(str::to_string);
        if self.consumer.is_some() {
            // The provider's limits describe the gateway's account, not this
            // caller: they are replaced by the consumer's own.
            for (name, _) in &response.0 {
                if consumer::is_provider_rate_limit_header(name) {
                    self.set_http_response_header(name, None);
                }
            }
            // Every x-ratelimit-* header is gone by now: added, not replaced.
            if let Some(hold) = &self.hold {
                for (name, value) in consumer::rate_limit_headers(&hold.status) {
                    self.add_http_response_header(name, &value);
                }
            }
        }
        if !(200..300).contains(&status) {
            return Action::Continue;
        }
        let api = decision.op.client_api();
        let strip = decision.stream == Some(StreamMode::Plain);
        let content_type = response
            .get("content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("text/event-stream") {
            self.answer.streaming = true;
            // Events may be edited, and an error event added to a stream that
            // ends early: the length is no longer known.
            self.set_http_response_header("content-length", None);
            self.answer.response = match api {
                ClientApi::OpenAi => Response::Stream(OpenAiStream::new(strip)),
                ClientApi::Anthropic => Response::AnthropicStream(AnthropicStream::new()),
            };
        } else if content_type.starts_with("application/json") {
            self.answer.response = Response::Json(BoundedBody::new(MAX_USAGE_BODY), api);
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if end_of_stream {
            self.answer.body_ended = true;
        }
        if matches!(self.answer.response, Response::Ignored) {
            return Action::Continue;
        }
        if self.answer.streaming && body_size > 0 && self.answer.first_byte_ms.is_none() {
            self.answer.first_byte_ms = Some(aigw_wasm::now_ms(self));
        }
        let chunk = if body_size > 0 {
            self.get_http_response_body(0, body_size)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let output = match &mut self.answer.response {
            Response::Ignored => None,
            Response::Json(copy, api) => {
                copy.push(&chunk);
                if end_of_stream {
                    let body = copy.get();
                    let reported = body.and_then(|body| match api {
                        ClientApi::OpenAi => Usage::from_openai_body(body),
                        ClientApi::Anthropic => Usage::from_anthropic_body(body),
                    });
                    let output = || {
                        body.and_then(|body| match api {
                            ClientApi::OpenAi => usage::openai_body_output(body),
                            ClientApi::Anthropic => usage::anthropic_body_output(body),
                        })
                        .unwrap_or(0)
                    };
                    self.answer.usage = Some(match reported {
                        Some(u) if !u.is_empty_report() => u,
                        _ => Usage::estimated(self.prompt_tokens, output()),
                    });
                    self.answer.complete = true;
                }
                None
            }
            Response::AnthropicStream(stream) => {
                stream.push(&chunk);
                if end_of_stream {
                    stream.finish();
                    self.answer.usage = Some(Usage::or_estimate(
                        stream.usage(),
                        self.prompt_tokens,
                        stream.output_estimate(),
                    ));
                    self.answer.complete = stream.saw_stop();
                    if !stream.ended_properly() {
                        // Never a silent truncation that looks like an end.
                        let mut bytes = chunk.clone();
                        bytes.extend(anthropic_early_end());
                        Some(bytes)
                    } else {
                        None
                    }
                } else {
                    None
                }
            }
            Response::Stream(stream) => {
                let out = stream.push(&chunk);
                let out = if end_of_stream {
                    let tail = stream.finish();
                    self.answer.usage = Some(Usage::or_estimate(
                        stream.usage().cloned(),
                        self.prompt_tokens,
                        stream.output_estimate(),
                    ));
                    self.answer.complete = stream.saw_done();
                    let out = join(out, tail, &chunk);
                    if stream.ended_properly() {
                        out
                    } else {
                        // Never a silent truncation that looks like an end.
                        let early = openai_early_end();
                        join(out, ChunkOutput::Replace(early), &chunk)
                    }
                } else {
                    out
                };
                match out {
                    ChunkOutput::Replace(bytes) => Some(bytes),
                    ChunkOutput::Unchanged => None,
                }
            }
        };
        if let Some(bytes) = output {
            self.set_http_response_body(0, body_size, &bytes);
        }
        if self.answer.first_token_ms.is_none() && self.output_so_far() > 0 {
            let now = aigw_wasm::now_ms(self);
            self.answer.first_token_ms = Some(now);
            let ttft = now.saturating_sub(self.start_ms).to_string();
            aigw_wasm::set_request_property(self, headers::property::TTFT_MS, &ttft);
        }
        if end_of_stream {
            self.log_usage_properties();
        }
        // Never hold a response: every chunk goes on as it arrives.
        Action::Continue
    }

    fn on_log(&mut self) {
        self.settle();
        self.record_stream_end();
        if self.answer.provider.is_none() && self.answer.status.is_some() {
            // Envoy's own failures (connect failure, timeout, reset) carry no
            // x-aigw-provider: the picked host's metadata names the provider.
            self.answer.provider = upstream_provider();
        }
        if self.answer.usage.is_none()
            && self.answer.streaming
            && self.answer.status.is_some_and(|s| s < 400)
        {
            // A stream that never ended (reset, client gone): what it
            // reported, or what it carried.
            self.answer.usage = self.stream_usage_so_far();
        }
        self.record_request();
        if let Phase::Forwarded(decision) = &self.phase {
            match &self.answer.usage {
                Some(u) => log::debug!(
                    "[{}] model {:?} route {} usage input={} output={} total={}",
                    self.id,
                    decision.model,
                    decision.route,
                    count(u.input_tokens),
                    count(u.output_tokens),
                    count(u.total_tokens)
                ),
                None => log::debug!(
                    "[{}] model {:?} route {} usage unknown",
                    self.id,
                    decision.model,
                    decision.route
                ),
            }
        }
    }
}

/// A token count for a log line: the number, or `-` when unknown.
fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_string(), |n| n.to_string())
}

/// The bytes for the last chunk: what `push` gave, then what `finish` released.
fn join(head: ChunkOutput, tail: ChunkOutput, chunk: &[u8]) -> ChunkOutput {
    match (head, tail) {
        (head, ChunkOutput::Unchanged) => head,
        (ChunkOutput::Replace(mut h), ChunkOutput::Replace(t)) => {
            h.extend(t);
            ChunkOutput::Replace(h)
        }
        (ChunkOutput::Unchanged, ChunkOutput::Replace(t)) => {
            let mut h = chunk.to_vec();
            h.extend(t);
            ChunkOutput::Replace(h)
        }
    }
}

/// The provider of the host Envoy picked last (its endpoint's metadata), read
/// with the host call directly (safe in `on_log`).
fn upstream_provider() -> Option<String> {
    match proxy_wasm::hostcalls::get_property(vec!["xds", "upstream_host_metadata"]) {
        Ok(Some(bytes)) => aigw_core::hostmeta::metadata_string(
            &bytes,
            aigw_core::config::provider::HOST_METADATA_NAMESPACE,
            aigw_core::config::provider::HOST_METADATA_PROVIDER,
        ),
        _ => None,
    }
}
