//! Configuration: parse, resolve keys from the VM's environment, compile;
//! and the per-worker state every attempt of this provider shares.

use std::cell::RefCell;
use std::rc::Rc;

use aigw_core::config::parse_json;
use aigw_core::config::provider::{ProviderConfig, ProviderPlan};
use aigw_core::keypool::{PoolState, Selector, TriedKeys};
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
    pub metrics: Vec<KeyMetrics>,
}

#[derive(Default)]
pub struct ProviderRoot {
    plan: Option<Rc<ProviderPlan>>,
    shared: Option<Rc<Shared>>,
}

impl Context for ProviderRoot {}

impl RootContext for ProviderRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        aigw_wasm::sync_log_level();
        let bytes = aigw_wasm::configuration_bytes(self.get_plugin_configuration());
        let plan =
            parse_json::<ProviderConfig>(&bytes).and_then(|c| c.compile(&aigw_wasm::env_var));
        match plan {
            Ok(plan) => {
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
                self.shared = Some(Rc::new(Shared {
                    selector: RefCell::new(Selector::new(n)),
                    tried: RefCell::new(TriedKeys::default()),
                    state_key,
                    metrics,
                }));
                self.plan = Some(Rc::new(plan));
                true
            }
            Err(errs) => {
                log::error!("aigw-provider: invalid configuration: {errs}");
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let plan = self.plan.clone()?;
        let shared = self.shared.clone()?;
        Some(Box::new(ProviderHttp::new(context_id, plan, shared)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
