//! Configuration: parse and compile in `on_configure`, refuse a bad config.

use std::rc::Rc;

use std::cell::RefCell;
use std::collections::HashMap;

use aigw_core::metrics::{
    interrupted_name, request_key, request_values, RequestLabels, RequestSample, Slot,
};
use aigw_wasm::{MemoryGauge, Metric, MetricCache};

use aigw_core::config::parse_json;
use aigw_core::config::router::{RouterConfig, RouterPlan};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::http::RouterHttp;

#[derive(Default)]
pub struct RouterRoot {
    plan: Option<Rc<RouterPlan>>,
    metrics: Rc<RouterMetrics>,
    memory: Option<MemoryGauge>,
}

/// The router filter's metrics, defined on first use (their names carry
/// their labels; [`aigw_core::metrics`] bounds the values).
#[derive(Default)]
pub struct RouterMetrics {
    pub cache: MetricCache,
    /// The metrics of each label combination seen, by the raw label values:
    /// a request of a known combination skips folding, naming and looking
    /// up each name. Bounded by [`MAX_CACHED_LABEL_SETS`].
    series: RefCell<HashMap<String, Series>>,
}

/// Label combinations whose metrics the router keeps at hand (per worker);
/// requests of others take the longer way, with the same result.
const MAX_CACHED_LABEL_SETS: usize = 1_000;

/// One label combination's metrics, each defined when first needed.
struct Series {
    labels: RequestLabels,
    metrics: Vec<(Slot, Option<Metric>)>,
}

impl RouterMetrics {
    /// `aigw.streams_interrupted_total.provider.<p>.how.<ended_early|reset>`.
    pub fn stream_interrupted(&self, provider: &str, ended_early: bool) {
        self.cache
            .count_with(|fold| interrupted_name(fold, provider, ended_early));
    }

    /// The metrics of a request that ended.
    pub fn request(&self, sample: &RequestSample<'_>) {
        let Ok(mut all) = self.series.try_borrow_mut() else {
            return;
        };
        let key = request_key(sample);
        let mut uncached = None;
        let series = match all.get_mut(&key) {
            Some(s) => s,
            None => {
                let labels = match self.cache.fold.try_borrow_mut() {
                    Ok(mut fold) => RequestLabels::of(sample, &mut fold),
                    Err(_) => return,
                };
                let s = Series {
                    labels,
                    metrics: Vec::new(),
                };
                if all.len() < MAX_CACHED_LABEL_SETS {
                    all.entry(key).or_insert(s)
                } else {
                    uncached.insert(s)
                }
            }
        };
        for (slot, value) in request_values(sample) {
            let metric = match series.metrics.iter().find(|(s, _)| *s == slot) {
                Some((_, m)) => *m,
                None => {
                    let m = self.cache.metric(&series.labels.name(slot), slot.kind());
                    series.metrics.push((slot, m));
                    m
                }
            };
            if let Some(m) = metric {
                m.record(slot.kind(), value);
            }
        }
    }
}

impl Context for RouterRoot {}

impl RootContext for RouterRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        aigw_wasm::sync_log_level();
        let bytes = aigw_wasm::configuration_bytes(self.get_plugin_configuration());
        let plan = parse_json::<RouterConfig>(&bytes).and_then(|c| c.compile());
        match plan {
            Ok(plan) => {
                log::info!(
                    "aigw-router: configured, {} listed models, {} consumers, body limit {} bytes",
                    plan.table.listed().len(),
                    plan.consumers.list().len(),
                    plan.max_request_body_bytes
                );
                for w in &plan.warnings {
                    log::warn!("aigw-router: {w}");
                }
                create_ledgers(&plan);
                // Configured names keep their own label values.
                if let Ok(mut fold) = self.metrics.cache.fold.try_borrow_mut() {
                    let models: Vec<&str> =
                        plan.table.listed().iter().map(|m| m.id.as_str()).collect();
                    fold.keep("model", &models);
                    // Most targets serve the model under the name clients use.
                    fold.keep("served_model", &models);
                    let consumers: Vec<&str> = plan
                        .consumers
                        .list()
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect();
                    fold.keep("consumer", &consumers);
                }
                self.plan = Some(Rc::new(plan));
                let memory = MemoryGauge::new("router");
                memory.report();
                self.memory = Some(memory);
                self.set_tick_period(aigw_wasm::MEMORY_REPORT_PERIOD);
                true
            }
            Err(errs) => {
                log::error!("aigw-router: invalid configuration: {errs}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        if let Some(m) = &self.memory {
            m.report();
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let plan = self.plan.clone()?;
        Some(Box::new(RouterHttp::new(
            context_id,
            plan,
            Rc::clone(&self.metrics),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Creates every consumer's ledger that does not exist yet. Envoy's shared
/// data cannot create a key conditionally: two workers creating the same
/// ledger on their first request could overwrite each other. Created here,
/// before requests arrive, every later change is a compare-and-swap.
fn create_ledgers(plan: &RouterPlan) {
    for c in plan.consumers.list() {
        if c.limits.is_empty() {
            continue;
        }
        let key = c.ledger_key();
        match proxy_wasm::hostcalls::get_shared_data(key) {
            Ok((Some(_), _)) => {}
            _ => {
                if let Err(s) = proxy_wasm::hostcalls::set_shared_data(key, Some(b"{}"), None) {
                    log::warn!(
                        "aigw-router: cannot create the ledger of consumer {}: {s:?}",
                        c.name
                    );
                }
            }
        }
    }
}
