//! The benchmark's `l1` filter: a proxy-wasm module, built with the same SDK
//! and profile as aigw's filters, that lets every request through untouched.
//!
//! Envoy enters the VM for every callback the module exports, and the SDK
//! exports them all, so a listener with this module in the places where aigw
//! has its two filters pays the cost of a VM per request (context creation,
//! one entry per header/body/trailer/log callback, context deletion) and
//! nothing else. `l1 − l0` is that cost; `l2 − l1` is the filters' own work.
//!
//! For the benchmark's host-call phase, the plugin configuration can ask for
//! work at request headers, to price each kind of host call a filter makes:
//! `reads=N` (N reads of one request header: Envoy calls back into the VM to
//! allocate each value), `sets=N` (N request headers written), `props=N`
//! (N filter-state properties written), `clock=N` (N reads of the clock), and
//! `hold=1` (hold the headers and the body until the body has ended, as the
//! router filter does). Empty configuration: nothing.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot::default()) });
}}

/// What each request does (all zero: nothing).
#[derive(Debug, Clone, Copy, Default)]
struct Work {
    reads: u32,
    sets: u32,
    props: u32,
    clock: u32,
    hold: bool,
}

impl Work {
    /// `reads=2,sets=3,...`; unknown or malformed items are ignored.
    fn parse(config: &[u8]) -> Work {
        let mut w = Work::default();
        for item in String::from_utf8_lossy(config).split(',') {
            let Some((k, v)) = item.split_once('=') else {
                continue;
            };
            let n: u32 = v.trim().parse().unwrap_or(0);
            match k.trim() {
                "reads" => w.reads = n,
                "sets" => w.sets = n,
                "props" => w.props = n,
                "clock" => w.clock = n,
                "hold" => w.hold = n > 0,
                _ => {}
            }
        }
        w
    }
}

#[derive(Default)]
struct NoopRoot {
    work: Work,
}

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        self.work = Work::parse(&self.get_plugin_configuration().unwrap_or_default());
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Noop { work: self.work }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Noop {
    work: Work,
}

impl Context for Noop {}

impl HttpContext for Noop {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let w = self.work;
        for _ in 0..w.reads {
            let _ = self.get_http_request_header_bytes("content-type");
        }
        for i in 0..w.sets {
            self.set_http_request_header(&format!("x-bench-{i}"), Some("1"));
        }
        for i in 0..w.props {
            self.set_property(vec![&format!("bench_{i}")], Some(b"1"));
        }
        for _ in 0..w.clock {
            let _ = self.get_current_time();
        }
        if w.hold && !end_of_stream {
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, _body_size: usize, end_of_stream: bool) -> Action {
        if self.work.hold && !end_of_stream {
            return Action::Pause;
        }
        Action::Continue
    }
}
