//! Per-attempt context of the provider filter.

use std::rc::Rc;

use aigw_core::config::provider::ProviderPlan;
use aigw_core::error::{ApiError, ClientApi};
use aigw_core::flow::provider::{self, ResponseDecision};
use aigw_core::headers::{self, StreamMode};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

enum Phase {
    Start,
    /// Holding the request body to rewrite it.
    RewritingBody,
    Sent,
    /// Holding an error response to rewrite it.
    RewritingError(u16),
    Replied,
}

pub struct ProviderHttp {
    id: u32,
    plan: Rc<ProviderPlan>,
    phase: Phase,
    client_path: String,
    route: Option<String>,
    stream: Option<StreamMode>,
}

impl ProviderHttp {
    pub fn new(id: u32, plan: Rc<ProviderPlan>) -> Self {
        ProviderHttp {
            id,
            plan,
            phase: Phase::Start,
            client_path: String::new(),
            route: None,
            stream: None,
        }
    }

    fn fail(&mut self, err: &ApiError) -> Action {
        log::debug!(
            "[{}] {}: {} {}",
            self.id,
            self.plan.name,
            err.status,
            err.message
        );
        self.phase = Phase::Replied;
        aigw_wasm::send_error(self, err, ClientApi::OpenAi);
        Action::Pause
    }
}

impl Context for ProviderHttp {}

impl HttpContext for ProviderHttp {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        self.client_path = self.get_http_request_header(":path").unwrap_or_default();
        self.route = self.get_http_request_header(headers::ROUTE);
        self.stream = self
            .get_http_request_header(headers::STREAM)
            .as_deref()
            .and_then(StreamMode::from_header);
        // Nothing of the gateway's internals or the client's credentials leaves Envoy.
        aigw_wasm::strip_internal_request_headers(self);
        aigw_wasm::strip_client_credentials(self);
        let attempt = match provider::plan_attempt(
            &self.plan,
            &self.client_path,
            self.route.as_deref(),
            self.stream,
        ) {
            Ok(a) => a,
            Err(err) => {
                for key in self.plan.keys.keys() {
                    if let Some(reason) = &key.unavailable_reason {
                        log::warn!(
                            "[{}] provider {} key {}: {reason}",
                            self.id,
                            self.plan.name,
                            key.id
                        );
                    }
                }
                return self.fail(&err);
            }
        };
        self.set_http_request_header(":path", Some(&attempt.path));
        self.set_http_request_header(":authority", Some(&attempt.authority));
        if let Some((name, value)) = &attempt.auth {
            self.set_http_request_header(name, Some(value));
        }
        log::debug!(
            "[{}] {} {} key={}",
            self.id,
            self.plan.name,
            attempt.path,
            attempt.key_id.as_deref().unwrap_or("-")
        );
        if attempt.rewrite_body && !end_of_stream {
            self.phase = Phase::RewritingBody;
            return Action::Pause;
        }
        self.phase = Phase::Sent;
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !matches!(self.phase, Phase::RewritingBody) {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        match provider::rewrite_body(
            &self.plan,
            &self.client_path,
            self.route.as_deref(),
            self.stream,
            &body,
        ) {
            Ok(Some(new_body)) => {
                self.set_http_request_body(0, body_size, &new_body);
                self.set_http_request_header("content-length", Some(&new_body.len().to_string()));
            }
            Ok(None) => {}
            Err(err) => return self.fail(&err),
        }
        self.phase = Phase::Sent;
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        if !matches!(self.phase, Phase::Sent) {
            return Action::Continue;
        }
        self.set_http_response_header(headers::SERVED_BY, Some(&self.plan.name));
        let status = aigw_wasm::response_status(self);
        match provider::on_response_headers(status) {
            ResponseDecision::Pass => Action::Continue,
            ResponseDecision::RewriteError if end_of_stream => {
                // No body to rewrite: answer in the client's shape instead,
                // keeping what the client needs to know of the provider's answer.
                let (new_status, body) = provider::rewrite_error(&self.plan, status, None, b"");
                log::info!(
                    "[{}] provider {} answered HTTP {status} without a body",
                    self.id,
                    self.plan.name
                );
                let retry_after = self.get_http_response_header("retry-after");
                let mut extra = vec![(headers::SERVED_BY, self.plan.name.as_str())];
                if let Some(value) = retry_after.as_deref() {
                    extra.push(("retry-after", value));
                }
                self.phase = Phase::Replied;
                aigw_wasm::send_json_with(self, new_status, &body, &extra);
                Action::Pause
            }
            ResponseDecision::RewriteError => {
                self.phase = Phase::RewritingError(status);
                self.set_http_response_header("content-length", None);
                Action::Pause
            }
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Phase::RewritingError(status) = self.phase else {
            return Action::Continue;
        };
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self
            .get_http_response_body(0, body_size)
            .unwrap_or_default();
        let content_type = self.get_http_response_header("content-type");
        let (new_status, new_body) =
            provider::rewrite_error(&self.plan, status, content_type.as_deref(), &body);
        log::info!(
            "[{}] provider {} answered HTTP {status}",
            self.id,
            self.plan.name
        );
        if new_status != status {
            self.set_http_response_header(":status", Some(&new_status.to_string()));
        }
        self.set_http_response_header("content-type", Some("application/json"));
        self.set_http_response_header("content-length", Some(&new_body.len().to_string()));
        self.set_http_response_body(0, body_size, &new_body);
        self.phase = Phase::Sent;
        Action::Continue
    }
}
