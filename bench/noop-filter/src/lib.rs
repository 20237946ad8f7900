//! The benchmark's `l1` filter: a proxy-wasm module, built with the same SDK
//! and profile as aigw's filters, that lets every request through untouched.
//!
//! Envoy enters the VM for every callback the module exports, and the SDK
//! exports them all, so a listener with this module in the places where aigw
//! has its two filters pays the cost of a VM per request (context creation,
//! one entry per header/body/trailer/log callback, context deletion) and
//! nothing else. `l1 − l0` is that cost; `l2 − l1` is the filters' own work.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot) });
}}

struct NoopRoot;

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Noop))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Noop;

impl Context for Noop {}

impl HttpContext for Noop {}
