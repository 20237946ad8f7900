//! Per-request context of the router filter.

use std::rc::Rc;

use aigw_core::api::Operation;
use aigw_core::body::BoundedBody;
use aigw_core::config::router::RouterPlan;
use aigw_core::error::{ApiError, ClientApi};
use aigw_core::flow::router::{self, HeadersDecision, RouteDecision};
use aigw_core::headers::{self, StreamMode};
use aigw_core::stream::{AnthropicStream, ChunkOutput, OpenAiStream};
use aigw_core::usage::Usage;
use proxy_wasm::traits::{Context, HttpContext};
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

enum Response {
    /// Not read (local replies, errors, responses without usage).
    Ignored,
    /// An OpenAI stream, read (and edited) event by event.
    Stream(OpenAiStream),
    /// An Anthropic stream, read event by event, never edited.
    AnthropicStream(AnthropicStream),
    /// A JSON body, copied to read usage at its end.
    Json(BoundedBody, ClientApi),
}

pub struct RouterHttp {
    id: u32,
    plan: Rc<RouterPlan>,
    phase: Phase,
    response: Response,
    usage: Option<Usage>,
}

impl RouterHttp {
    pub fn new(id: u32, plan: Rc<RouterPlan>) -> Self {
        RouterHttp {
            id,
            plan,
            phase: Phase::Start,
            response: Response::Ignored,
            usage: None,
        }
    }

    fn fail(&mut self, err: &ApiError, api: ClientApi) -> Action {
        log::debug!("[{}] {} {}: {}", self.id, err.status, err.code, err.message);
        self.phase = Phase::Replied;
        aigw_wasm::send_error(self, err, api);
        Action::Pause
    }
}

impl Context for RouterHttp {}

impl HttpContext for RouterHttp {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        // Nothing the client sends may pose as the gateway's own decisions.
        aigw_wasm::strip_internal_request_headers(self);
        let method = self.get_http_request_header(":method").unwrap_or_default();
        let path = self.get_http_request_header(":path").unwrap_or_default();
        // The client's path, for the access log (the provider filter rewrites `:path`).
        aigw_wasm::set_request_property(self, headers::property::CLIENT_PATH, &path);
        let content_type = self.get_http_request_header("content-type");
        let content_length = self.get_http_request_header("content-length");
        let decision = router::on_request_headers(
            &self.plan,
            &method,
            &path,
            content_type.as_deref(),
            content_length.as_deref(),
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
        match router::route_body(&self.plan, op, &body) {
            Ok(decision) => {
                // The header drives Envoy's route match; filter state carries the
                // decisions to the provider filter of every attempt.
                self.set_http_request_header(headers::ROUTE, Some(&decision.route));
                let request_id = format!("{:x}-{:x}", aigw_wasm::now_ns(self), self.id);
                aigw_wasm::set_request_property(self, headers::property::REQUEST_ID, &request_id);
                aigw_wasm::set_request_property(self, headers::property::ROUTE, &decision.route);
                self.set_http_request_header(
                    headers::CLIENT_API,
                    Some(decision.op.client_api().as_str()),
                );
                if let Some(mode) = decision.stream {
                    self.set_http_request_header(headers::STREAM, Some(mode.as_header()));
                    aigw_wasm::set_request_property(
                        self,
                        headers::property::STREAM,
                        mode.as_header(),
                    );
                }
                aigw_wasm::strip_client_credentials(self);
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
        let Phase::Forwarded(decision) = &self.phase else {
            return Action::Continue;
        };
        let status = aigw_wasm::response_status(self);
        if !(200..300).contains(&status) {
            return Action::Continue;
        }
        let api = decision.op.client_api();
        let strip = decision.stream == Some(StreamMode::Plain);
        let content_type = self
            .get_http_response_header("content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("text/event-stream") {
            self.response = match api {
                ClientApi::OpenAi => {
                    if strip {
                        // Events may be edited: the length is no longer known.
                        self.set_http_response_header("content-length", None);
                    }
                    Response::Stream(OpenAiStream::new(strip))
                }
                ClientApi::Anthropic => Response::AnthropicStream(AnthropicStream::new()),
            };
        } else if content_type.starts_with("application/json") {
            self.response = Response::Json(BoundedBody::new(MAX_USAGE_BODY), api);
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if matches!(self.response, Response::Ignored) {
            return Action::Continue;
        }
        let chunk = if body_size > 0 {
            self.get_http_response_body(0, body_size)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let output = match &mut self.response {
            Response::Ignored => None,
            Response::Json(copy, api) => {
                copy.push(&chunk);
                if end_of_stream {
                    self.usage = copy.get().and_then(|body| match api {
                        ClientApi::OpenAi => Usage::from_openai_body(body),
                        ClientApi::Anthropic => Usage::from_anthropic_body(body),
                    });
                }
                None
            }
            Response::AnthropicStream(stream) => {
                stream.push(&chunk);
                if end_of_stream {
                    stream.finish();
                    self.usage = stream.usage();
                }
                None
            }
            Response::Stream(stream) => {
                let out = stream.push(&chunk);
                let out = if end_of_stream {
                    let tail = stream.finish();
                    self.usage = stream.usage().cloned();
                    join(out, tail, &chunk)
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
        // Never hold a response: every chunk goes on as it arrives.
        Action::Continue
    }

    fn on_log(&mut self) {
        if let Phase::Forwarded(decision) = &self.phase {
            match &self.usage {
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
