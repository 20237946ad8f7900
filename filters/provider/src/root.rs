//! Configuration: parse, resolve keys from the VM's environment, compile.

use std::rc::Rc;

use aigw_core::config::parse_json;
use aigw_core::config::provider::{ProviderConfig, ProviderPlan};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::http::ProviderHttp;

#[derive(Default)]
pub struct ProviderRoot {
    plan: Option<Rc<ProviderPlan>>,
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
                            "provider {} key {} is unusable: {reason}",
                            plan.name,
                            key.id
                        );
                    }
                }
                log::info!(
                    "provider {} ({}) at {}, {} key(s), {} route(s)",
                    plan.name,
                    plan.provider.kind().as_str(),
                    plan.base_url,
                    plan.keys.keys().len(),
                    plan.routes.len()
                );
                self.plan = Some(Rc::new(plan));
                true
            }
            Err(errs) => {
                log::error!("invalid configuration: {errs}");
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let plan = self.plan.clone()?;
        Some(Box::new(ProviderHttp::new(context_id, plan)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
