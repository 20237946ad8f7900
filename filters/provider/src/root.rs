//! Configuration: parse, resolve keys from the VM's environment, compile;
//! and the per-worker state every attempt of this provider shares.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use aigw_core::config::provider::{FilterConfig, ProviderPlan};
use aigw_core::keypool::{self, PoolState, Selector, State, TriedKeys};
use aigw_wasm::{metric_label, Metric};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::http::ProviderHttp;

/// Per-key metrics. Labels are encoded in the names and extracted by the
/// `stats_tags` of the rendered Envoy config.
pub struct KeyMetrics {
    pub requests: Metric,
    pub rate_limited: Metric,
    pub auth: Metric,
    pub error: Metric,
    pub state: Metric,
}

impl KeyMetrics {
    fn new(provider: &str, key: &str) -> KeyMetrics {
        let labels = format!(
            "provider.{}.key.{}",
            metric_label(provider),
            metric_label(key)
        );
        let failures = |class: &str| {
            Metric::counter(&format!("aigw.key_failures_total.{labels}.class.{class}"))
        };
        KeyMetrics {
            requests: Metric::counter(&format!("aigw.key_requests_total.{labels}")),
            rate_limited: failures("rate_limited"),
            auth: failures("auth"),
            error: failures("error"),
            state: Metric::gauge(&format!("aigw.key_state.{labels}")),
        }
    }
}

/// What the attempts of this provider on this worker share.
pub struct Shared {
    pub selector: RefCell<Selector>,
    pub tried: RefCell<TriedKeys>,
    /// Shared-data key of the pool's state (all workers).
    pub state_key: String,
    /// The pool's state as this worker last parsed it, with the version
    /// (shared data's CAS value) it was read at.
    pub state_cache: RefCell<Option<(u32, Rc<PoolState>)>>,
    pub metrics: Vec<KeyMetrics>,
}

impl Shared {
    /// The pool's state: read from shared data, parsed only when it changed
    /// since this worker last parsed it.
    pub fn state<C: Context + ?Sized>(&self, ctx: &C, plan: &ProviderPlan) -> Rc<PoolState> {
        let (bytes, cas) = ctx.get_shared_data(&self.state_key);
        if let (Some(cas), Ok(cache)) = (cas, self.state_cache.try_borrow()) {
            if let Some((seen, state)) = cache.as_ref() {
                if *seen == cas {
                    return Rc::clone(state);
                }
            }
        }
        let state = Rc::new(PoolState::load(
            bytes.as_deref(),
            &plan.fingerprint,
            plan.keys.keys().len(),
        ));
        if let (Some(cas), Ok(mut cache)) = (cas, self.state_cache.try_borrow_mut()) {
            *cache = Some((cas, Rc::clone(&state)));
        }
        state
    }
}

/// One provider this filter instance serves: its plan and its per-worker state.
#[derive(Clone)]
pub struct Member {
    pub plan: Rc<ProviderPlan>,
    pub shared: Rc<Shared>,
}

#[derive(Default)]
pub struct ProviderRoot {
    /// One provider (its own cluster), or a fallback chain's, in order.
    members: Rc<Vec<Member>>,
    /// In a chain: a provider's refusal moves the request on.
    refusals_move_on: bool,
    /// Fallback and retry counters, defined on first use.
    metrics: Rc<aigw_wasm::MetricCache>,
    /// Probes in flight: call token → key index.
    probes: HashMap<u32, usize>,
    memory: Option<aigw_wasm::MemoryGauge>,
}

impl ProviderRoot {
    /// The provider whose keys this instance probes: a provider's own
    /// cluster only (a chain's members are probed by their own clusters).
    fn single(&self) -> Option<(Rc<ProviderPlan>, Rc<Shared>)> {
        match self.members.as_slice() {
            [m] => Some((m.plan.clone(), m.shared.clone())),
            _ => None,
        }
    }
}

impl ProviderRoot {
    /// One worker at a time probes: the one that takes the lease.
    fn take_lease(&self, plan: &ProviderPlan, interval_ms: u64) -> bool {
        let now = aigw_wasm::now_ms(self);
        let key = format!("aigw.healthcheck.{}", plan.fingerprint);
        aigw_wasm::shared_update(self, &key, |current| {
            let until: u64 = current
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            (until <= now).then(|| (now + interval_ms * 9 / 10).to_string().into_bytes())
        })
    }

    fn probe(&mut self) {
        let Some((plan, shared)) = self.single() else {
            return;
        };
        let Some(hc) = plan.health_check.clone() else {
            return;
        };
        if !self.take_lease(&plan, hc.interval_ms) {
            return;
        }
        let n = plan.keys.keys().len();
        let state = PoolState::load(
            aigw_wasm::shared_get(self, &shared.state_key).as_deref(),
            &plan.fingerprint,
            n,
        );
        for index in keypool::due_for_check(&state) {
            let Some(key) = plan.keys.get(index) else {
                continue;
            };
            let Some(secret) = &key.secret else { continue };
            let (auth_name, auth_value) = plan.provider.auth_header(secret.expose());
            let mut headers = vec![
                (":method", "GET"),
                (":path", hc.path.as_str()),
                (":authority", plan.authority.as_str()),
                ("accept-encoding", "identity"),
                (auth_name, auth_value.as_str()),
            ];
            let defaults = plan.provider.default_headers();
            for (name, value) in &defaults {
                headers.push((name, value.as_str()));
            }
            match self.dispatch_http_call(
                &hc.cluster,
                headers,
                None,
                vec![],
                Duration::from_millis(hc.timeout_ms),
            ) {
                Ok(token) => {
                    self.probes.insert(token, index);
                }
                Err(status) => log::warn!(
                    "aigw-provider: provider {} health check of key {} not sent: {status:?}",
                    plan.name,
                    key.id
                ),
            }
        }
    }
}

impl Context for ProviderRoot {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        _body: usize,
        _trailers: usize,
    ) {
        let Some(index) = self.probes.remove(&token) else {
            return;
        };
        let Some((plan, shared)) = self.single() else {
            return;
        };
        // Bytes, not the SDK's string getter: a value that is not UTF-8
        // would panic it.
        let header = |name: &str| {
            self.get_http_call_response_header_bytes(name)
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        let status: u16 = header(":status").and_then(|s| s.parse().ok()).unwrap_or(0);
        let now = aigw_wasm::now_ms(self);
        let retry_after = header("retry-after").and_then(|v| keypool::parse_retry_after(&v, now));
        let n = plan.keys.keys().len();
        let mut after = None;
        let mut changed = false;
        aigw_wasm::shared_update(self, &shared.state_key, |bytes| {
            let mut st = PoolState::load(bytes, &plan.fingerprint, n);
            let h = st.keys.get_mut(index)?;
            changed = keypool::record_check(h, status, retry_after, now, &plan.pool);
            after = Some(*h);
            changed.then(|| st.to_bytes())
        });
        let key_id = plan.keys.get(index).map_or("?", |k| k.id.as_str());
        if let (Some(h), Some(m)) = (after, shared.metrics.get(index)) {
            m.state.set(h.state.gauge());
            if changed && h.state == State::Healthy {
                log::info!("aigw-provider: provider {} key {key_id} is back: health check answered {status}", plan.name);
            } else {
                log::debug!("aigw-provider: provider {} key {key_id} health check answered {status}: still {}", plan.name, h.state.as_str());
            }
        }
    }
}

impl RootContext for ProviderRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        aigw_wasm::sync_log_level();
        let bytes = aigw_wasm::configuration_bytes(self.get_plugin_configuration());
        let config = match FilterConfig::parse(&bytes) {
            Ok(c) => c,
            Err(errs) => {
                log::error!("aigw-provider: invalid configuration: {errs}");
                return false;
            }
        };
        let (chain, refusals_move_on) = match &config {
            FilterConfig::One(_) => (false, false),
            FilterConfig::Chain {
                refusals_move_on, ..
            } => (true, *refusals_move_on),
        };
        self.refusals_move_on = refusals_move_on;
        let mut members = Vec::new();
        for (i, c) in config.providers().iter().enumerate() {
            let plan = match c.compile(&aigw_wasm::env_var) {
                Ok(plan) => plan,
                Err(errs) => {
                    let at = if chain {
                        format!("chain[{i}]: ")
                    } else {
                        String::new()
                    };
                    log::error!("aigw-provider: invalid configuration: {at}{errs}");
                    return false;
                }
            };
            if !chain {
                for key in plan.keys.keys() {
                    if let Some(reason) = &key.unavailable_reason {
                        log::warn!(
                            "aigw-provider: provider {} key {} is unusable: {reason}",
                            plan.name,
                            key.id
                        );
                    }
                }
                log::info!(
                    "aigw-provider: provider {} ({}) at {}, {} key(s), {} route(s)",
                    plan.name,
                    plan.provider.kind().as_str(),
                    plan.base_url,
                    plan.keys.keys().len(),
                    plan.routes.len()
                );
            }
            let n = plan.keys.keys().len();
            let state_key = format!("aigw.keypool.{}", plan.fingerprint);
            let metrics: Vec<KeyMetrics> = plan
                .keys
                .keys()
                .iter()
                .map(|k| KeyMetrics::new(&plan.name, &k.id))
                .collect();
            // The state kept across a reload with the same keys shows at once.
            let state = PoolState::load(
                aigw_wasm::shared_get(self, &state_key).as_deref(),
                &plan.fingerprint,
                n,
            );
            for (m, h) in metrics.iter().zip(&state.keys) {
                m.state.set(h.state.gauge());
            }
            let shared = Rc::new(Shared {
                selector: RefCell::new(Selector::new(n)),
                tried: RefCell::new(TriedKeys::default()),
                state_key,
                state_cache: RefCell::new(None),
                metrics,
            });
            members.push(Member {
                plan: Rc::new(plan),
                shared,
            });
        }
        if chain {
            let names: Vec<&str> = members.iter().map(|m| m.plan.name.as_str()).collect();
            log::info!("aigw-provider: fallback chain {}", names.join(" -> "));
        }
        // Ticks probe keys (a single provider with a health check; a chain has two or more)
        // and report the VM's memory.
        let health_check = match members.as_slice() {
            [one] => one.plan.health_check.as_ref().map(|hc| hc.interval_ms),
            _ => None,
        };
        self.set_tick_period(health_check.map_or(aigw_wasm::MEMORY_REPORT_PERIOD, |ms| {
            aigw_wasm::MEMORY_REPORT_PERIOD.min(Duration::from_millis(ms))
        }));
        self.members = Rc::new(members);
        let memory = aigw_wasm::MemoryGauge::new("provider");
        memory.report();
        self.memory = Some(memory);
        true
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let first = self.members.first()?.clone();
        Some(Box::new(ProviderHttp::new(
            context_id,
            first,
            Rc::clone(&self.members),
            self.refusals_move_on,
            Rc::clone(&self.metrics),
        )))
    }
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn on_tick(&mut self) {
        self.probe();
        if let Some(m) = &self.memory {
            m.report();
        }
    }
}
