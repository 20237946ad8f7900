//! The thin proxy-wasm adapter every aigw filter shares: logging and the panic
//! hook, local replies in the client's API shape, header helpers, environment.
//! No decisions are made here; they live in `aigw-core`.

use aigw_core::error::{ApiError, ClientApi};
use proxy_wasm::traits::HttpContext;
use proxy_wasm::types::LogLevel;

/// Sets up logging for a filter module. The SDK's logger also installs a panic
/// hook that logs the panic at critical level before the VM aborts.
pub fn init() {
    proxy_wasm::set_log_level(LogLevel::Info);
}

/// Follows Envoy's log level for the `wasm` component (e.g.
/// `--component-log-level wasm:debug`), so debug lines cost nothing unless
/// asked for. Envoy prefixes each line with the plugin name.
pub fn sync_log_level() {
    if let Ok(level) = proxy_wasm::hostcalls::get_log_level() {
        proxy_wasm::set_log_level(level);
    }
}

/// Sends `err` as a local reply in the client's API shape.
pub fn send_error<C: HttpContext + ?Sized>(ctx: &C, err: &ApiError, api: ClientApi) {
    send_json(ctx, err.status, &err.body(api));
}

/// Sends a JSON local reply.
pub fn send_json<C: HttpContext + ?Sized>(ctx: &C, status: u16, body: &[u8]) {
    send_json_with(ctx, status, body, &[]);
}

/// Sends a JSON local reply with extra headers.
pub fn send_json_with<C: HttpContext + ?Sized>(
    ctx: &C,
    status: u16,
    body: &[u8],
    extra: &[(&str, &str)],
) {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
    ];
    headers.extend_from_slice(extra);
    ctx.send_http_response(u32::from(status), headers, Some(body));
}

/// The request headers as they came, read with one host call (names
/// lowercase, as Envoy gives them); then removes the gateway's internal
/// headers and, when `credentials`, the client's credentials and `extra`
/// from the request: only the headers present are touched, one host call
/// each. The snapshot returned still has every header read.
pub fn take_request_headers<C: HttpContext + ?Sized>(
    ctx: &C,
    credentials: bool,
    extra: Option<&str>,
) -> Headers {
    let mut all = Vec::new();
    for (name, value) in ctx.get_http_request_headers_bytes() {
        let value = lossy(value);
        let remove = aigw_core::headers::is_internal(&name)
            || (credentials
                && (aigw_core::headers::CLIENT_CREDENTIALS.contains(&name.as_str())
                    || extra == Some(name.as_str())));
        if remove {
            ctx.set_http_request_header(&name, None);
        }
        all.push((name, value));
    }
    Headers(all)
}

/// A request header's value. Read as bytes: the SDK's string getters panic
/// on a value that is not UTF-8, which a client can send (and a panic kills
/// the worker's VM); such bytes read as U+FFFD here.
pub fn request_header<C: HttpContext + ?Sized>(ctx: &C, name: &str) -> Option<String> {
    ctx.get_http_request_header_bytes(name).map(lossy)
}

/// A response header's value (see [`request_header`]).
pub fn response_header<C: HttpContext + ?Sized>(ctx: &C, name: &str) -> Option<String> {
    ctx.get_http_response_header_bytes(name).map(lossy)
}

/// The response headers, read with one host call (see [`request_header`]
/// for why as bytes). Every host call that returns data makes Envoy call
/// back into the VM to allocate it: one read of the map costs less than two
/// reads of single headers.
pub fn response_headers<C: HttpContext + ?Sized>(ctx: &C) -> Headers {
    Headers(
        ctx.get_http_response_headers_bytes()
            .into_iter()
            .map(|(name, value)| (name, lossy(value)))
            .collect(),
    )
}

/// Bytes as text: kept as they are when they are UTF-8 (no copy), with
/// U+FFFD for the bytes that are not.
fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A header map as it was read (names lowercase, as Envoy gives them).
#[derive(Debug, Clone, Default)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// The first value of `name` (lowercase).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `:status` as a number (0 if absent or bad).
    pub fn status(&self) -> u16 {
        self.get(":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

/// Envoy's response code details (`via_upstream`, `upstream_response_timeout`,
/// `upstream_reset_before_response_started{…}`, …), empty when unknown. Uses
/// the host call directly: safe in `on_log` and `on_done`, where the SDK's
/// wrappers must not be trusted not to panic.
pub fn response_code_details() -> String {
    match proxy_wasm::hostcalls::get_property(vec!["response", "code_details"]) {
        Ok(Some(details)) => String::from_utf8_lossy(&details).into_owned(),
        _ => String::new(),
    }
}

/// Reads an environment variable of the VM (set by
/// `vm_config.environment_variables` in Envoy's config).
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The plugin configuration as bytes; an absent configuration is `{}`.
pub fn configuration_bytes(raw: Option<Vec<u8>>) -> Vec<u8> {
    match raw {
        Some(b) if !b.iter().all(u8::is_ascii_whitespace) => b,
        _ => b"{}".to_vec(),
    }
}

/// Sets a per-request filter-state value (Envoy keeps it as `wasm.<name>`),
/// readable by the access log and by the upstream filters of every attempt
/// of this request (with `get_property`).
pub fn set_request_property<C: HttpContext + ?Sized>(ctx: &C, name: &str, value: &str) {
    ctx.set_property(vec![name], Some(value.as_bytes()));
}

/// Reads a shared-data value (shared by all worker threads of this Envoy).
pub fn shared_get<C: proxy_wasm::traits::Context + ?Sized>(ctx: &C, key: &str) -> Option<Vec<u8>> {
    ctx.get_shared_data(key).0
}

/// Read-modify-write of a shared-data value with compare-and-swap: `change`
/// gets the current value and returns the new one, or `None` to leave it.
/// Retries when another worker wrote in between. Returns whether a value was
/// written.
pub fn shared_update<C, F>(ctx: &C, key: &str, mut change: F) -> bool
where
    C: proxy_wasm::traits::Context + ?Sized,
    F: FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
{
    for _ in 0..16 {
        let (current, cas) = ctx.get_shared_data(key);
        let Some(new) = change(current.as_deref()) else {
            return false;
        };
        match ctx.set_shared_data(key, Some(&new), cas) {
            Ok(()) => return true,
            Err(proxy_wasm::types::Status::CasMismatch) => continue,
            Err(status) => {
                log::warn!("shared data {key}: write failed: {status:?}");
                return false;
            }
        }
    }
    log::warn!("shared data {key}: too much contention, update dropped");
    false
}

/// Milliseconds since the epoch, from the host's clock.
pub fn now_ms<C: proxy_wasm::traits::Context + ?Sized>(ctx: &C) -> u64 {
    ctx.get_current_time()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Nanoseconds since the epoch, from the host's clock.
pub fn now_ns<C: proxy_wasm::traits::Context + ?Sized>(ctx: &C) -> u128 {
    ctx.get_current_time()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A metric defined once at configuration time; failures to define or update
/// a metric are logged, never fatal.
#[derive(Debug, Clone, Copy)]
pub struct Metric(Option<u32>);

impl Metric {
    pub fn counter(name: &str) -> Metric {
        Self::define(proxy_wasm::types::MetricType::Counter, name)
    }

    pub fn gauge(name: &str) -> Metric {
        Self::define(proxy_wasm::types::MetricType::Gauge, name)
    }

    pub fn histogram(name: &str) -> Metric {
        Self::define(proxy_wasm::types::MetricType::Histogram, name)
    }

    fn define(kind: proxy_wasm::types::MetricType, name: &str) -> Metric {
        match proxy_wasm::hostcalls::define_metric(kind, name) {
            Ok(id) => Metric(Some(id)),
            Err(status) => {
                log::warn!("metric {name}: cannot define: {status:?}");
                Metric(None)
            }
        }
    }

    pub fn add(&self, n: i64) {
        if let Some(id) = self.0 {
            let _ = proxy_wasm::hostcalls::increment_metric(id, n);
        }
    }

    pub fn set(&self, v: u64) {
        if let Some(id) = self.0 {
            let _ = proxy_wasm::hostcalls::record_metric(id, v);
        }
    }

    /// Adds `value` to a counter, or records it in a histogram.
    pub fn record(&self, kind: aigw_core::metrics::Kind, value: u64) {
        match kind {
            aigw_core::metrics::Kind::Counter => self.add(i64::try_from(value).unwrap_or(i64::MAX)),
            aigw_core::metrics::Kind::Histogram => self.set(value),
        }
    }
}

/// How often each filter reports its VM's memory.
pub const MEMORY_REPORT_PERIOD: std::time::Duration = std::time::Duration::from_secs(10);

/// The gauge `aigw.wasm_memory_bytes.filter.<filter>`: the linear memory of
/// the filter's VM (per worker; with several workers, the last one to
/// report). A wasm VM's memory never shrinks: this is its high-water mark.
pub struct MemoryGauge(Metric);

impl MemoryGauge {
    pub fn new(filter: &str) -> MemoryGauge {
        MemoryGauge(Metric::gauge(&format!(
            "aigw.wasm_memory_bytes.filter.{}",
            metric_label(filter)
        )))
    }

    pub fn report(&self) {
        self.0.set(vm_memory_bytes());
    }
}

/// The VM's linear memory in bytes (0 outside wasm).
pub fn vm_memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        (core::arch::wasm32::memory_size(0) as u64).saturating_mul(65_536)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// Metrics defined on first use, by name (per worker), with the label budget
/// that bounds their names ([`aigw_core::metrics`]).
#[derive(Default)]
pub struct MetricCache {
    pub fold: std::cell::RefCell<aigw_core::metrics::LabelFold>,
    defined: std::cell::RefCell<std::collections::HashMap<String, Metric>>,
    /// The series cap was reached (and said so once).
    full: std::cell::Cell<bool>,
}

impl MetricCache {
    /// Applies one update, defining its metric the first time.
    pub fn apply(&self, u: &aigw_core::metrics::Update) {
        if let Some(metric) = self.metric(&u.name, u.kind) {
            metric.record(u.kind, u.value);
        }
    }

    /// The metric `name`, defined the first time; `None` past the series cap.
    pub fn metric(&self, name: &str, kind: aigw_core::metrics::Kind) -> Option<Metric> {
        let mut defined = self.defined.try_borrow_mut().ok()?;
        if let Some(m) = defined.get(name) {
            return Some(*m);
        }
        if defined.len() >= aigw_core::metrics::MAX_SERIES {
            if !self.full.replace(true) {
                log::warn!(
                    "aigw: {} metric series on this worker; new ones are dropped",
                    aigw_core::metrics::MAX_SERIES
                );
            }
            return None;
        }
        let m = match kind {
            aigw_core::metrics::Kind::Counter => Metric::counter(name),
            aigw_core::metrics::Kind::Histogram => Metric::histogram(name),
        };
        defined.insert(name.to_string(), m);
        Some(m)
    }

    /// Adds 1 to the counter `name`.
    pub fn count(&self, name: String) {
        self.apply(&aigw_core::metrics::Update {
            name,
            kind: aigw_core::metrics::Kind::Counter,
            value: 1,
        });
    }

    /// Adds 1 to the counter whose name `name` makes with the label budget.
    pub fn count_with(&self, name: impl FnOnce(&mut aigw_core::metrics::LabelFold) -> String) {
        let name = match self.fold.try_borrow_mut() {
            Ok(mut fold) => name(&mut fold),
            Err(_) => return,
        };
        self.count(name);
    }
}

/// A label value safe inside a metric name (labels are separated by dots).
pub fn metric_label(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Envoy's shared data as a quota store: one per Envoy process, seen by every
/// worker, written with compare-and-swap.
pub struct SharedData;

impl aigw_core::quota::QuotaStore for SharedData {
    fn load(
        &self,
        key: &str,
    ) -> Result<(Option<Vec<u8>>, Option<u64>), aigw_core::quota::StoreError> {
        proxy_wasm::hostcalls::get_shared_data(key)
            .map(|(value, cas)| (value, cas.map(u64::from)))
            .map_err(|s| aigw_core::quota::StoreError::Failed(format!("{s:?}")))
    }

    fn store(
        &self,
        key: &str,
        value: &[u8],
        version: Option<u64>,
    ) -> Result<(), aigw_core::quota::StoreError> {
        let cas = version.and_then(|v| u32::try_from(v).ok());
        match proxy_wasm::hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(proxy_wasm::types::Status::CasMismatch) => {
                Err(aigw_core::quota::StoreError::Conflict)
            }
            Err(s) => Err(aigw_core::quota::StoreError::Failed(format!("{s:?}"))),
        }
    }
}
