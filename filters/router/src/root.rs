//! Configuration: parse and compile in `on_configure`, refuse a bad config.

use std::rc::Rc;

use aigw_core::config::parse_json;
use aigw_core::config::router::{RouterConfig, RouterPlan};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::http::RouterHttp;

#[derive(Default)]
pub struct RouterRoot {
    plan: Option<Rc<RouterPlan>>,
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
                    "aigw-router: configured, {} listed models, body limit {} bytes",
                    plan.table.listed().len(),
                    plan.max_request_body_bytes
                );
                self.plan = Some(Rc::new(plan));
                true
            }
            Err(errs) => {
                log::error!("aigw-router: invalid configuration: {errs}");
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let plan = self.plan.clone()?;
        Some(Box::new(RouterHttp::new(context_id, plan)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
