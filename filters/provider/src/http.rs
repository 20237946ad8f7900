//! Per-attempt context of the provider filter.

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use aigw_core::config::provider::{ProviderPlan, HOST_METADATA_NAMESPACE, HOST_METADATA_PROVIDER};
use aigw_core::convert::{ResponseContext, StreamConverter};
use aigw_core::error::{ApiError, ClientApi};
use aigw_core::flow::provider::KeyChoice;
use aigw_core::flow::provider::{self, AttemptPlan, ResponsePlan};
use aigw_core::handoff::Handoff;
use aigw_core::headers::{self, StreamMode};
use aigw_core::keypool::{self, KeyHealth, Outcome, PoolState, State};
use aigw_core::provider::Protocol;
use aigw_core::{hostmeta, metrics};
use aigw_wasm::{Headers, MetricCache};

use crate::root::{Member, Shared};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

enum Phase {
    Start,
    /// Holding the request body to prepare it for the provider.
    PreparingBody,
    Sent,
    /// Holding an error response to rewrite it.
    RewritingError(u16),
    /// Holding a complete response to convert it.
    ConvertingBody,
    /// Converting a stream chunk by chunk.
    ConvertingStream(Box<dyn StreamConverter>),
    Replied,
}

pub struct ProviderHttp {
    id: u32,
    plan: Rc<ProviderPlan>,
    /// Every provider of this cluster: one, or a fallback chain's in order.
    members: Rc<Vec<Member>>,
    /// In a chain whose refusals move on, whether targets follow this
    /// attempt's provider.
    more_targets: bool,
    refusals_move_on: bool,
    metrics: Rc<MetricCache>,
    retry_counted: bool,
    /// The router filter's hand-off (absent without the router filter).
    handoff: Option<Handoff>,
    phase: Phase,
    attempt: Option<AttemptPlan>,
    route: Option<String>,
    /// The model the provider was asked for, once known.
    model: String,
    request_id: String,
    shared: Rc<Shared>,
    /// The key this attempt uses, and whether its outcome was recorded.
    key: Option<usize>,
    /// The key is on trial: this attempt decides whether it is back.
    trial: bool,
    /// The key was in full health (no failure on record) when chosen: a
    /// success then changes nothing in the pool's state.
    chosen_healthy: bool,
    outcome_recorded: bool,
}

impl ProviderHttp {
    pub fn new(
        id: u32,
        first: Member,
        members: Rc<Vec<Member>>,
        refusals_move_on: bool,
        metrics: Rc<MetricCache>,
    ) -> Self {
        let Member { plan, shared } = first;
        ProviderHttp {
            id,
            plan,
            members,
            more_targets: false,
            refusals_move_on,
            metrics,
            retry_counted: false,
            handoff: None,
            phase: Phase::Start,
            attempt: None,
            route: None,
            model: String::new(),
            request_id: String::new(),
            shared,
            key: None,
            trial: false,
            chosen_healthy: false,
            outcome_recorded: false,
        }
    }

    /// In a fallback chain's cluster, finds this attempt's provider from the
    /// metadata of the host Envoy picked. `Err` carries the local reply sent.
    fn select_member(&mut self) -> Result<(), Action> {
        if self.members.len() < 2 {
            return Ok(());
        }
        let name = match proxy_wasm::hostcalls::get_property(vec!["xds", "upstream_host_metadata"])
        {
            Ok(Some(bytes)) => {
                hostmeta::metadata_string(&bytes, HOST_METADATA_NAMESPACE, HOST_METADATA_PROVIDER)
            }
            _ => None,
        };
        let found = name.as_deref().and_then(|n| {
            self.members
                .iter()
                .enumerate()
                .find(|(_, m)| m.plan.name == n)
                .map(|(i, m)| (i, m.clone()))
        });
        match found {
            Some((i, m)) => {
                self.plan = m.plan;
                self.shared = m.shared;
                self.more_targets = self.refusals_move_on && i + 1 < self.members.len();
                if i > 0 {
                    // Envoy moved this request along its chain to this provider.
                    let model = self
                        .handoff
                        .as_ref()
                        .map(|h| h.model.clone())
                        .unwrap_or_default();
                    let provider = &self.plan.name;
                    self.metrics
                        .count_with(|fold| metrics::fallback_name(fold, &model, provider));
                }
                Ok(())
            }
            _ => {
                log::error!(
                    "[{}] fallback chain: the upstream host names no provider of the chain ({:?})",
                    self.id,
                    name
                );
                let err = ApiError::new(
                    500,
                    "server_error",
                    "gateway_misconfigured",
                    "the gateway could not tell which provider this attempt goes to",
                );
                Err(self.fail(&err, self.client_api()))
            }
        }
    }

    /// Chooses this attempt's key from the pool's shared state. `Err` carries
    /// the local reply already sent.
    fn choose_key(&mut self, api: ClientApi, all: &Headers) -> Result<Option<usize>, Action> {
        for _ in 0..4 {
            let now = aigw_wasm::now_ms(self);
            let n = self.plan.keys.keys().len();
            let state = self.shared.state(self, &self.plan);
            let tried = self.shared.tried.borrow().get(&self.request_id);
            if !tried.is_empty() && !self.retry_counted {
                // Another attempt of this request on this provider: a key retry.
                self.retry_counted = true;
                let provider = &self.plan.name;
                self.metrics
                    .count_with(|fold| metrics::retry_name(fold, provider));
            }
            let sticky = self.plan.sticky_header.as_deref().and_then(|h| all.get(h));
            let choice = provider::choose_key(
                &self.plan,
                &state,
                &mut self.shared.selector.borrow_mut(),
                &tried,
                sticky,
                now,
                self.more_targets,
            );
            match choice {
                KeyChoice::Keyless => return Ok(None),
                KeyChoice::Use {
                    index,
                    trial: false,
                } => {
                    self.chosen_healthy = state.keys.get(index) == Some(&KeyHealth::default());
                    return Ok(Some(index));
                }
                KeyChoice::Use { index, trial: true } => {
                    // Claim the trial: only one request decides whether the key is back.
                    let claimed = aigw_wasm::shared_update(self, &self.shared.state_key, |bytes| {
                        let mut st = PoolState::load(bytes, &self.plan.fingerprint, n);
                        let h = st.keys.get_mut(index)?;
                        if *h != state.keys[index] {
                            return None; // another worker moved first
                        }
                        keypool::start_trial(h, now);
                        Some(st.to_bytes())
                    });
                    if claimed {
                        self.trial = true;
                        log::info!(
                            "[{}] provider {} key {} is due back: trial request",
                            self.id,
                            self.plan.name,
                            self.plan.keys.get(index).map_or("?", |k| k.id.as_str())
                        );
                        if let Some(m) = self.shared.metrics.get(index) {
                            m.state.set(State::Trial.gauge());
                        }
                        return Ok(Some(index));
                    }
                }
                KeyChoice::Refuse {
                    error,
                    retry_after_secs,
                } => {
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
                    log::warn!("[{}] {}", self.id, error.message);
                    self.phase = Phase::Replied;
                    let retry = retry_after_secs.map(|s| s.to_string());
                    let mut extra = vec![(headers::SERVED_BY, self.plan.name.as_str())];
                    if let Some(r) = retry.as_deref() {
                        extra.push(("retry-after", r));
                    }
                    aigw_wasm::send_json_with(self, error.status, &error.body(api), &extra);
                    return Err(Action::Pause);
                }
            }
        }
        // The trial kept going to other workers: use the pool's ordinary choice.
        let state = self.shared.state(self, &self.plan);
        let tried = self.shared.tried.borrow().get(&self.request_id);
        let choice = provider::choose_key(
            &self.plan,
            &state,
            &mut self.shared.selector.borrow_mut(),
            &tried,
            None,
            aigw_wasm::now_ms(self),
            self.more_targets,
        );
        Ok(match choice {
            KeyChoice::Use { index, .. } => Some(index),
            _ => None,
        })
    }

    /// Records what this attempt's response (or its absence, `status` 0) says
    /// about its key. `retry_after` is the response's `Retry-After` header.
    /// Reads no header map itself: it also runs from `on_done`, when they are gone.
    fn record_outcome(&mut self, status: u16, retry_after: Option<String>) {
        let Some(index) = self.key else { return };
        if self.outcome_recorded {
            return;
        }
        self.outcome_recorded = true;
        let now = aigw_wasm::now_ms(self);
        if status == 0 && client_went_away() {
            // The client hung up before the response: nothing to say about the
            // key; a retry (if any) still goes to another one.
            self.shared
                .tried
                .borrow_mut()
                .add(&self.request_id, index, now);
            return;
        }
        let retry_after = retry_after.and_then(|v| keypool::parse_retry_after(&v, now));
        let outcome = Outcome::of_status(status, retry_after);
        log::debug!(
            "[{}] {} key #{index}: status {status} -> {}",
            self.id,
            self.plan.name,
            outcome.class()
        );
        if let Some(m) = self.shared.metrics.get(index) {
            m.requests.add(1);
            match outcome {
                Outcome::Success => {}
                Outcome::RateLimited { .. } => m.rate_limited.add(1),
                Outcome::AuthFailed => m.auth.add(1),
                Outcome::Failed => m.error.add(1),
            }
        }
        if outcome == Outcome::Success && self.chosen_healthy && !self.trial {
            // A success of a key that had no failure on record when chosen
            // changes nothing: the shared state is not read (one host call
            // and a parse less per request). A failure another worker
            // recorded in between is reset by the next success instead.
            self.shared.tried.borrow_mut().forget(&self.request_id);
            return;
        }
        let n = self.plan.keys.keys().len();
        let key_id = self
            .plan
            .keys
            .get(index)
            .map_or("?", |k| k.id.as_str())
            .to_string();
        let mut new_state = None;
        aigw_wasm::shared_update(self, &self.shared.state_key, |bytes| {
            let mut st = PoolState::load(bytes, &self.plan.fingerprint, n);
            let h = st.keys.get_mut(index)?;
            if !keypool::record(h, outcome, now, &self.plan.pool) {
                new_state = Some(*h);
                return None;
            }
            new_state = Some(*h);
            Some(st.to_bytes())
        });
        if let (Some(h), Some(m)) = (new_state, self.shared.metrics.get(index)) {
            m.state.set(h.state.gauge());
        }
        match outcome {
            Outcome::Success => self.shared.tried.borrow_mut().forget(&self.request_id),
            _ => self
                .shared
                .tried
                .borrow_mut()
                .add(&self.request_id, index, now),
        }
        let back_in = new_state.map_or(0, |h| h.until_ms.saturating_sub(now) / 1000);
        match (outcome, new_state.map(|h| h.state)) {
            (Outcome::AuthFailed, _) => log::error!(
                "provider {} refused key {} (HTTP {status}): key taken out for {back_in} s; check it",
                self.plan.name,
                key_id
            ),
            (Outcome::RateLimited { .. }, _) => log::warn!(
                "[{}] provider {} rate limited key {}: cooling down for {back_in} s",
                self.id,
                self.plan.name,
                key_id
            ),
            (Outcome::Failed, Some(State::Unhealthy)) => log::warn!(
                "[{}] provider {} key {} is unhealthy after repeated failures: out for {back_in} s",
                self.id,
                self.plan.name,
                key_id
            ),
            _ => {}
        }
    }

    /// Sets (or, with `None`, removes) a request header unless the map, as
    /// read in `all`, already says so: a host call saved per header.
    fn ensure_request_header(&self, all: &Headers, name: &str, value: Option<&str>) {
        let mut found = all
            .0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        let already = match (found.next(), value) {
            (None, None) => true,
            (Some(v), Some(want)) => v == want && found.next().is_none(),
            _ => false,
        };
        if !already {
            self.set_http_request_header(name, value);
        }
    }

    fn client_api(&self) -> ClientApi {
        self.attempt
            .as_ref()
            .map_or(ClientApi::OpenAi, |a| a.client_api)
    }

    fn fail(&mut self, err: &ApiError, api: ClientApi) -> Action {
        // The gateway refused the request itself: nothing to say about the key;
        // a trial it claimed is given back, due again at once.
        if let (Some(index), true) = (self.key, self.trial) {
            let now = aigw_wasm::now_ms(self);
            let n = self.plan.keys.keys().len();
            aigw_wasm::shared_update(self, &self.shared.state_key, |bytes| {
                let mut st = PoolState::load(bytes, &self.plan.fingerprint, n);
                keypool::release_trial(st.keys.get_mut(index)?, now);
                Some(st.to_bytes())
            });
        }
        self.key = None;
        log::debug!(
            "[{}] {}: {} {}",
            self.id,
            self.plan.name,
            err.status,
            err.message
        );
        self.phase = Phase::Replied;
        aigw_wasm::send_error(self, err, api);
        Action::Pause
    }

    fn response_context(&self) -> ResponseContext<'_> {
        let created = self
            .get_current_time()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        ResponseContext {
            model: &self.model,
            created,
            id: &self.request_id,
        }
    }
}

/// Whether this attempt ended because the client went away (Envoy's response
/// code details say `downstream_...`), rather than through the provider
/// (connection failure, reset, timeout). Uses the host call directly: it runs
/// from `on_done`, where the SDK's wrappers must not be trusted not to panic.
fn client_went_away() -> bool {
    aigw_wasm::response_code_details().contains("downstream")
}

impl Context for ProviderHttp {
    fn on_done(&mut self) -> bool {
        // No response at all: connection failure, reset or timeout. (Header
        // maps are gone by now: nothing here may read them.)
        self.record_outcome(0, None);
        true
    }
}

impl HttpContext for ProviderHttp {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        // The router's decisions come from filter state: this attempt may be a
        // retry, whose headers an earlier attempt already rewrote. The headers
        // are the fallback for a chain without the router filter.
        // Nothing of the gateway's internals or the client's credentials
        // leaves Envoy: removed now, with one read of the headers.
        let all = aigw_wasm::take_request_headers(self, true, None);
        // The first attempt finds the hand-off in the headers it just read
        // (and removed); later ones in filter state.
        self.handoff = match all.get(headers::HANDOFF) {
            Some(value) => Handoff::parse(value.as_bytes()),
            None => self
                .get_property(vec![headers::property::HANDOFF])
                .and_then(|b| Handoff::parse(&b)),
        };
        let (client_path, route, stream, request_id) = match &self.handoff {
            Some(h) => (
                h.client_path.clone(),
                Some(h.route.clone()),
                h.stream.clone(),
                h.request_id.clone(),
            ),
            // Without the router filter: the headers as they came.
            None => (
                all.get(":path").unwrap_or_default().to_string(),
                all.get(headers::ROUTE).map(str::to_string),
                all.get(headers::STREAM).map(str::to_string),
                all.get("x-request-id").unwrap_or_default().to_string(),
            ),
        };
        let stream = stream.as_deref().and_then(StreamMode::from_header);
        self.route = route;
        // The id the router filter gave this request (the client's own
        // x-request-id may be reused); the header only without the router.
        self.request_id = request_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(64)
            .collect();
        if let Err(action) = self.select_member() {
            return action;
        }
        let api = aigw_core::api::classify("POST", &client_path)
            .map_or(ClientApi::OpenAi, |e| e.op.client_api());
        let key = match self.choose_key(api, &all) {
            Ok(k) => k,
            Err(action) => return action,
        };
        self.key = key;
        let attempt = match provider::plan_attempt(
            &self.plan,
            &client_path,
            self.route.as_deref(),
            stream,
            key,
        ) {
            Ok(a) => a,
            Err(err) => {
                self.key = None;
                return self.fail(&err, api);
            }
        };
        // Each header below is written only when it changes something: `all`
        // is the map as this attempt found it (an earlier attempt of a
        // fallback chain may have edited it).
        // Responses must arrive uncompressed: usage is read from them and
        // translations rewrite them.
        self.ensure_request_header(&all, "accept-encoding", Some("identity"));
        // The client's Anthropic headers go to Anthropic providers only, as
        // the client sent them (an earlier attempt of a fallback chain may
        // have removed them, or added its own default version).
        // (Without the router filter, the headers are the client's.)
        let mut anthropic = [None, None];
        for (name, slot) in headers::ANTHROPIC_HEADERS.iter().zip(&mut anthropic) {
            *slot = match (self.plan.provider.protocol(), &self.handoff) {
                (Protocol::Anthropic, Some(h)) => h.anthropic_header(name).map(str::to_string),
                (Protocol::Anthropic, None) => all.get(name).map(str::to_string),
                _ => None,
            };
            self.ensure_request_header(&all, name, slot.as_deref());
        }
        self.ensure_request_header(&all, ":authority", Some(&attempt.authority));
        if let Some((name, value)) = &attempt.auth {
            self.set_http_request_header(name, Some(value));
        }
        for (name, value) in &attempt.default_headers {
            let present = match headers::ANTHROPIC_HEADERS.iter().position(|h| h == name) {
                Some(i) => anthropic[i].is_some(),
                None => all.get(name).is_some(),
            };
            if !present {
                self.set_http_request_header(name, Some(value));
            }
        }
        if let Some(path) = &attempt.path {
            self.ensure_request_header(&all, ":path", Some(path));
        }
        log::debug!(
            "[{}] {} {:?} {} key={}",
            self.id,
            self.plan.name,
            attempt.translation,
            attempt.path.as_deref().unwrap_or("(path after body)"),
            attempt.key_id.as_deref().unwrap_or("-")
        );
        // An earlier attempt of this request may have rewritten the body and its
        // length; the body Envoy re-sends is the client's own.
        if let Some(h) = &self.handoff {
            let length = h.body_length.to_string();
            self.ensure_request_header(&all, "content-length", Some(&length));
        }
        let read_body = attempt.read_body;
        self.attempt = Some(attempt);
        if read_body {
            if end_of_stream {
                let err = ApiError::bad_request("missing_body", "request body is required");
                return self.fail(&err, self.client_api());
            }
            self.phase = Phase::PreparingBody;
            return Action::Pause;
        }
        self.phase = Phase::Sent;
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !matches!(self.phase, Phase::PreparingBody) {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let Some(attempt) = &self.attempt else {
            return Action::Continue;
        };
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        match provider::prepare_body(&self.plan, attempt, self.route.as_deref(), &body) {
            Ok(prepared) => {
                self.set_http_request_header(":path", Some(&prepared.path));
                if let Some(new_body) = &prepared.body {
                    self.set_http_request_body(0, body_size, new_body);
                    self.set_http_request_header(
                        "content-length",
                        Some(&new_body.len().to_string()),
                    );
                }
                log::debug!(
                    "[{}] {} {} model={}",
                    self.id,
                    self.plan.name,
                    prepared.path,
                    prepared.model
                );
                self.model = prepared.model;
            }
            Err(err) => return self.fail(&err, self.client_api()),
        }
        self.phase = Phase::Sent;
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        if !matches!(self.phase, Phase::Sent) {
            return Action::Continue;
        }
        let response = aigw_wasm::response_headers(self);
        let status = response.status();
        let retry_after = response.get("retry-after").map(str::to_string);
        self.record_outcome(status, retry_after.clone());
        let Some(attempt) = &self.attempt else {
            return Action::Continue;
        };
        self.set_http_response_header(headers::SERVED_BY, Some(&self.plan.name));
        let served_model = if self.model.is_empty() {
            self.handoff
                .as_ref()
                .map(|h| h.model.clone())
                .unwrap_or_default()
        } else {
            self.model.clone()
        };
        if !served_model.is_empty() {
            self.set_http_response_header(headers::SERVED_MODEL, Some(&served_model));
        }
        let plan = provider::on_response_headers(attempt, status, response.get("content-type"));
        match plan {
            ResponsePlan::Pass => Action::Continue,
            ResponsePlan::RewriteError if end_of_stream => {
                // No body to rewrite: answer in the client's shape instead,
                // keeping what the client needs to know of the provider's answer.
                let api = self.client_api();
                let (new_status, body) =
                    provider::rewrite_error(&self.plan, api, status, None, b"");
                log::info!(
                    "[{}] provider {} answered HTTP {status} without a body",
                    self.id,
                    self.plan.name
                );
                let mut extra = vec![(headers::SERVED_BY, self.plan.name.as_str())];
                if let Some(value) = retry_after.as_deref() {
                    extra.push(("retry-after", value));
                }
                self.phase = Phase::Replied;
                aigw_wasm::send_json_with(self, new_status, &body, &extra);
                Action::Pause
            }
            ResponsePlan::RewriteError => {
                self.phase = Phase::RewritingError(status);
                self.set_http_response_header("content-length", None);
                Action::Pause
            }
            ResponsePlan::ConvertBody => {
                self.set_http_response_header("content-length", None);
                self.set_http_response_header(
                    "content-type",
                    Some(provider::converted_content_type(plan)),
                );
                if end_of_stream {
                    // Nothing to convert; the client gets the provider's empty 2xx.
                    return Action::Continue;
                }
                self.phase = Phase::ConvertingBody;
                Action::Pause
            }
            ResponsePlan::ConvertStream => {
                self.set_http_response_header("content-length", None);
                self.set_http_response_header(
                    "content-type",
                    Some(provider::converted_content_type(plan)),
                );
                let converter = provider::stream_converter(attempt, &self.response_context());
                match converter {
                    Some(c) => self.phase = Phase::ConvertingStream(c),
                    None => self.phase = Phase::Sent,
                }
                // Streams are never held: headers go now, events as they come.
                Action::Continue
            }
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match &self.phase {
            Phase::RewritingError(status) => {
                let status = *status;
                if !end_of_stream {
                    return Action::Pause;
                }
                let body = self
                    .get_http_response_body(0, body_size)
                    .unwrap_or_default();
                let content_type = aigw_wasm::response_header(self, "content-type");
                let api = self.client_api();
                let (new_status, new_body) = provider::rewrite_error(
                    &self.plan,
                    api,
                    status,
                    content_type.as_deref(),
                    &body,
                );
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
            Phase::ConvertingBody => {
                if !end_of_stream {
                    return Action::Pause;
                }
                let Some(attempt) = &self.attempt else {
                    return Action::Continue;
                };
                let body = self
                    .get_http_response_body(0, body_size)
                    .unwrap_or_default();
                let converted = provider::convert_body(attempt, &body, &self.response_context());
                let api = attempt.client_api;
                let new_body = match converted {
                    Ok(b) => b,
                    Err(err) => {
                        log::warn!("[{}] provider {}: {}", self.id, self.plan.name, err.message);
                        self.set_http_response_header(":status", Some(&err.status.to_string()));
                        err.body(api)
                    }
                };
                self.set_http_response_header("content-length", Some(&new_body.len().to_string()));
                self.set_http_response_body(0, body_size, &new_body);
                self.phase = Phase::Sent;
                Action::Continue
            }
            Phase::ConvertingStream(_) => {
                let chunk = if body_size > 0 {
                    self.get_http_response_body(0, body_size)
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                let Phase::ConvertingStream(converter) = &mut self.phase else {
                    return Action::Continue;
                };
                let mut out = converter.push(&chunk);
                if end_of_stream {
                    out.extend(converter.finish());
                }
                self.set_http_response_body(0, body_size, &out);
                Action::Continue
            }
            Phase::Start | Phase::PreparingBody | Phase::Sent | Phase::Replied => Action::Continue,
        }
    }
}
