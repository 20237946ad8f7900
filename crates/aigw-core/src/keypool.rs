//! Provider key pools: health of each key, and which key serves an attempt.
//!
//! Each key is a small state machine driven by the outcomes of the requests
//! it served and by time (passed in, so tests use a fake clock):
//!
//! | state      | entered on                                   | leaves when                          |
//! |------------|----------------------------------------------|--------------------------------------|
//! | healthy    | a success                                    | a failure below                      |
//! | cooling    | 429 (for `Retry-After`, else the cooldown)   | its time passes → one trial request  |
//! | unhealthy  | `failureThreshold` 5xx / connection failures | backoff passes (doubles each time)   |
//! | disabled   | 401 / 403 (the provider refused the key)     | `authFailureCooldown` passes         |
//! | trial      | the first pick after the time passed         | its outcome; or `trialTimeout`       |
//!
//! The state of all keys of a provider is one value shared by every worker
//! (Envoy shared data, updated with compare-and-swap); it carries a
//! fingerprint of the key set, so a reload with the same keys keeps it and a
//! change of keys starts afresh.

use serde::{Deserialize, Serialize};

/// Pool settings (all durations in milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Cooldown after a 429 without a usable `Retry-After`.
    pub cooldown_ms: u64,
    /// Longest `Retry-After` honoured.
    pub max_cooldown_ms: u64,
    /// How long a key refused by the provider (401/403) stays out.
    pub auth_failure_cooldown_ms: u64,
    /// Consecutive 5xx or connection failures that make a key unhealthy.
    pub failure_threshold: u32,
    /// First backoff of an unhealthy key; doubles on each failed trial.
    pub unhealthy_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// A trial without an outcome for this long may be given to another request.
    pub trial_timeout_ms: u64,
    pub when_all_down: WhenAllDown,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            cooldown_ms: 30_000,
            max_cooldown_ms: 600_000,
            auth_failure_cooldown_ms: 3_600_000,
            failure_threshold: 3,
            unhealthy_backoff_ms: 10_000,
            max_backoff_ms: 300_000,
            trial_timeout_ms: 60_000,
            when_all_down: WhenAllDown::Fail,
        }
    }
}

/// What happens when no key is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenAllDown {
    /// Answer 503 with `Retry-After` (until the first key is due back).
    Fail,
    /// Use the key due back first anyway.
    TryOldest,
}

/// The health of one key, as stored in shared data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KeyHealth {
    #[serde(rename = "s")]
    pub state: State,
    /// When the key is due back (cooling, unhealthy, disabled), or when the trial began.
    #[serde(rename = "u", default)]
    pub until_ms: u64,
    /// Consecutive 5xx / connection failures.
    #[serde(rename = "f", default)]
    pub failures: u32,
    /// How many times the unhealthy backoff has doubled.
    #[serde(rename = "b", default)]
    pub backoff_level: u32,
    /// The state the trial decides for (`cooling`, `unhealthy` or `disabled`).
    #[serde(rename = "p", default)]
    pub trial_of: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum State {
    #[default]
    #[serde(rename = "h")]
    Healthy,
    #[serde(rename = "c")]
    Cooling,
    #[serde(rename = "u")]
    Unhealthy,
    #[serde(rename = "d")]
    Disabled,
    #[serde(rename = "t")]
    Trial,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Healthy => "healthy",
            State::Cooling => "cooling",
            State::Unhealthy => "unhealthy",
            State::Disabled => "disabled",
            State::Trial => "trial",
        }
    }

    /// Value of the per-key state gauge.
    pub fn gauge(self) -> u64 {
        match self {
            State::Healthy => 0,
            State::Trial => 1,
            State::Cooling => 2,
            State::Unhealthy => 3,
            State::Disabled => 4,
        }
    }
}

/// The shared state of a provider's keys.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PoolState {
    /// Fingerprint of the key set this state belongs to.
    #[serde(rename = "fp")]
    pub fingerprint: String,
    pub keys: Vec<KeyHealth>,
}

impl PoolState {
    pub fn fresh(fingerprint: &str, keys: usize) -> PoolState {
        PoolState {
            fingerprint: fingerprint.to_string(),
            keys: vec![KeyHealth::default(); keys],
        }
    }

    /// Reads stored state; anything unreadable, or for another key set, starts afresh.
    pub fn load(bytes: Option<&[u8]>, fingerprint: &str, keys: usize) -> PoolState {
        bytes
            .and_then(|b| serde_json::from_slice::<PoolState>(b).ok())
            .filter(|s| s.fingerprint == fingerprint && s.keys.len() == keys)
            .unwrap_or_else(|| PoolState::fresh(fingerprint, keys))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// What a response says about the key that served it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The key worked (any answer that is not about the key or the provider's health).
    Success,
    /// 429, with the `Retry-After` it gave (milliseconds), if any.
    RateLimited { retry_after_ms: Option<u64> },
    /// 401 / 403.
    AuthFailed,
    /// 5xx, connection failure, reset or timeout before a response.
    Failed,
}

impl Outcome {
    /// Classifies a provider status (0: no response at all).
    pub fn of_status(status: u16, retry_after_ms: Option<u64>) -> Outcome {
        match status {
            429 => Outcome::RateLimited { retry_after_ms },
            401 | 403 => Outcome::AuthFailed,
            0 | 500..=599 => Outcome::Failed,
            _ => Outcome::Success,
        }
    }

    /// Label for failure metrics.
    pub fn class(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::RateLimited { .. } => "rate_limited",
            Outcome::AuthFailed => "auth",
            Outcome::Failed => "error",
        }
    }
}

/// Applies an outcome to a key. Returns true when the stored state changed
/// (a success on an already healthy key changes nothing and costs no write).
pub fn record(health: &mut KeyHealth, outcome: Outcome, now_ms: u64, s: &PoolSettings) -> bool {
    let before = *health;
    match outcome {
        Outcome::Success => {
            *health = KeyHealth::default();
        }
        Outcome::RateLimited { retry_after_ms } => {
            let wait = retry_after_ms
                .unwrap_or(s.cooldown_ms)
                .min(s.max_cooldown_ms)
                .max(1);
            *health = KeyHealth {
                state: State::Cooling,
                until_ms: now_ms + wait,
                ..*health
            };
        }
        Outcome::AuthFailed => {
            *health = KeyHealth {
                state: State::Disabled,
                until_ms: now_ms + s.auth_failure_cooldown_ms,
                ..*health
            };
        }
        Outcome::Failed => {
            let failures = health.failures.saturating_add(1);
            let failed_trial = health.state == State::Trial && health.trial_of == State::Unhealthy;
            if failures >= s.failure_threshold || failed_trial {
                let level = if failed_trial {
                    health.backoff_level.saturating_add(1)
                } else {
                    health.backoff_level
                };
                let backoff = s
                    .unhealthy_backoff_ms
                    .saturating_mul(1u64 << level.min(20))
                    .min(s.max_backoff_ms);
                *health = KeyHealth {
                    state: State::Unhealthy,
                    until_ms: now_ms + backoff,
                    failures,
                    backoff_level: level,
                    trial_of: State::Healthy,
                };
            } else {
                // Below the threshold the key stays in service (a trial of a
                // cooling key that meets a 5xx goes back to cooling briefly).
                let state = if health.state == State::Trial {
                    State::Healthy
                } else {
                    health.state
                };
                *health = KeyHealth {
                    state,
                    failures,
                    ..*health
                };
            }
        }
    }
    *health != before
}

/// The key chosen for an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pick {
    /// Use this key (index into the provider's keys).
    Key(usize),
    /// Use this key as the trial that decides whether it is back; the shared
    /// state must record the trial (`start_trial`) before the request goes.
    Trial(usize),
    /// No key is usable: the soonest one is due back in this many milliseconds.
    AllDown { retry_after_ms: u64 },
}

/// Whether a key may serve an attempt now, and how.
fn availability(h: &KeyHealth, now_ms: u64, s: &PoolSettings) -> Option<bool> {
    match h.state {
        State::Healthy => Some(false),
        State::Cooling | State::Unhealthy | State::Disabled => {
            (now_ms >= h.until_ms).then_some(true)
        }
        // A trial in flight keeps the key for itself, until it times out.
        State::Trial => (now_ms >= h.until_ms.saturating_add(s.trial_timeout_ms)).then_some(true),
    }
}

/// Keys an active health check should probe: those unhealthy or refused. Not
/// a rate-limited key (a model list says nothing of rate limits: its
/// `Retry-After` stands), nor one whose trial is in flight.
pub fn due_for_check(state: &PoolState) -> Vec<usize> {
    state
        .keys
        .iter()
        .enumerate()
        .filter(|(_, h)| matches!(h.state, State::Unhealthy | State::Disabled))
        .map(|(i, _)| i)
        .collect()
}

/// Applies an active health check's answer to a key that is out: a success
/// brings it back at once; a refusal or rate limit keeps it out (for the new
/// time); anything else (an error, no answer) changes nothing. Returns whether
/// the state changed.
pub fn record_check(
    health: &mut KeyHealth,
    status: u16,
    retry_after_ms: Option<u64>,
    now_ms: u64,
    s: &PoolSettings,
) -> bool {
    // Only keys a probe can speak for: refused or unhealthy (a rate-limited
    // key keeps the provider's Retry-After).
    if !matches!(health.state, State::Unhealthy | State::Disabled) {
        return false;
    }
    match status {
        200..=299 => record(health, Outcome::Success, now_ms, s),
        401 | 403 => record(health, Outcome::AuthFailed, now_ms, s),
        429 => record(health, Outcome::RateLimited { retry_after_ms }, now_ms, s),
        _ => false,
    }
}

/// Gives back a trial that will have no outcome (the gateway refused the
/// request itself): the key is due again at once.
pub fn release_trial(health: &mut KeyHealth, now_ms: u64) {
    if health.state == State::Trial {
        *health = KeyHealth {
            state: health.trial_of,
            until_ms: now_ms,
            trial_of: State::Healthy,
            ..*health
        };
    }
}

/// Marks key `i` as the subject of a trial starting now.
pub fn start_trial(health: &mut KeyHealth, now_ms: u64) {
    let trial_of = if health.state == State::Trial {
        health.trial_of
    } else {
        health.state
    };
    *health = KeyHealth {
        state: State::Trial,
        until_ms: now_ms,
        trial_of,
        ..*health
    };
}

/// Per-worker selection state: smooth weighted round robin.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    current: Vec<i64>,
}

impl Selector {
    pub fn new(keys: usize) -> Self {
        Selector {
            current: vec![0; keys],
        }
    }

    /// Chooses a key for an attempt.
    ///
    /// `tried`: keys this request already used (never chosen again).
    /// `sticky`: a value (consumer, session) that keeps its requests on one
    /// healthy key while the key set and its health stay the same.
    pub fn pick(
        &mut self,
        state: &PoolState,
        keys: &[(&str, u32)],
        tried: &[usize],
        sticky: Option<&str>,
        now_ms: u64,
        s: &PoolSettings,
    ) -> Pick {
        let n = keys.len().min(state.keys.len());
        if self.current.len() != n {
            self.current = vec![0; n];
        }
        let eligible: Vec<(usize, bool)> = (0..n)
            .filter(|i| !tried.contains(i) && keys[*i].1 > 0)
            .filter_map(|i| availability(&state.keys[i], now_ms, s).map(|trial| (i, trial)))
            .collect();
        // A key due back is tried first: one request decides whether it is back.
        if let Some(&(i, _)) = eligible.iter().find(|(_, trial)| *trial) {
            return Pick::Trial(i);
        }
        if eligible.is_empty() {
            return self.all_down(state, keys, tried, now_ms, s);
        }
        if let Some(value) = sticky {
            let best = eligible
                .iter()
                .map(|&(i, _)| (i, rendezvous_score(value, keys[i].0, keys[i].1)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((i, _)) = best {
                return Pick::Key(i);
            }
        }
        let total: i64 = eligible.iter().map(|&(i, _)| i64::from(keys[i].1)).sum();
        let mut best = eligible[0].0;
        for &(i, _) in &eligible {
            self.current[i] += i64::from(keys[i].1);
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= total;
        Pick::Key(best)
    }

    fn all_down(
        &self,
        state: &PoolState,
        keys: &[(&str, u32)],
        tried: &[usize],
        now_ms: u64,
        s: &PoolSettings,
    ) -> Pick {
        let due = |h: &KeyHealth| match h.state {
            State::Trial => h.until_ms.saturating_add(s.trial_timeout_ms),
            _ => h.until_ms,
        };
        let soonest = (0..keys.len().min(state.keys.len()))
            .filter(|i| keys[*i].1 > 0)
            .min_by_key(|i| (tried.contains(i), due(&state.keys[*i])));
        match (s.when_all_down, soonest) {
            (WhenAllDown::TryOldest, Some(i)) if !tried.contains(&i) => Pick::Key(i),
            (_, Some(i)) => Pick::AllDown {
                retry_after_ms: due(&state.keys[i]).saturating_sub(now_ms).max(1000),
            },
            (_, None) => Pick::AllDown {
                retry_after_ms: s.cooldown_ms,
            },
        }
    }
}

/// The keys each in-flight request has already tried (per worker: the
/// attempts of a request run on the worker that received it). Bounded:
/// entries expire after `TRIED_TTL_MS`, and the oldest go first past
/// `TRIED_MAX` requests.
///
/// Entries are keyed by the id the router filter gives each request (not the
/// client's `x-request-id`, which a client may reuse).
#[derive(Debug, Default)]
pub struct TriedKeys {
    entries: std::collections::HashMap<String, (u64, Vec<usize>)>,
}

pub const TRIED_TTL_MS: u64 = 120_000;
pub const TRIED_MAX: usize = 10_000;
/// Size at which expired entries are dropped.
const TRIED_PRUNE_AT: usize = 256;

impl TriedKeys {
    pub fn get(&self, request: &str) -> Vec<usize> {
        self.entries
            .get(request)
            .map(|(_, keys)| keys.clone())
            .unwrap_or_default()
    }

    pub fn add(&mut self, request: &str, key: usize, now_ms: u64) {
        if request.is_empty() {
            return;
        }
        if self.entries.len() >= TRIED_PRUNE_AT && !self.entries.contains_key(request) {
            self.prune(now_ms);
        }
        let entry = self
            .entries
            .entry(request.to_string())
            .or_insert((now_ms, Vec::new()));
        entry.0 = now_ms;
        if !entry.1.contains(&key) {
            entry.1.push(key);
        }
    }

    pub fn forget(&mut self, request: &str) {
        self.entries.remove(request);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn prune(&mut self, now_ms: u64) {
        self.entries
            .retain(|_, (at, _)| now_ms.saturating_sub(*at) < TRIED_TTL_MS);
        if self.entries.len() >= TRIED_MAX {
            let mut ages: Vec<u64> = self.entries.values().map(|(at, _)| *at).collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() / 2];
            self.entries.retain(|_, (at, _)| *at > cutoff);
        }
    }
}

/// Weighted rendezvous hashing score (higher wins).
fn rendezvous_score(value: &str, key_id: &str, weight: u32) -> f64 {
    let h = fnv1a(&[value.as_bytes(), b"\x00", key_id.as_bytes()]);
    // Map to (0, 1), then -w / ln(u): the weighted rendezvous formula.
    let u = ((h >> 11) as f64 + 0.5) / ((1u64 << 53) as f64);
    -f64::from(weight) / u.ln()
}

/// FNV-1a, 64 bit, over several byte strings.
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Fingerprint of a key set: ids, weights and (hashed) values, in order.
pub fn fingerprint(keys: &[(&str, u32, &str)]) -> String {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for (id, weight, value) in keys {
        parts.push(id.as_bytes().to_vec());
        parts.push(weight.to_le_bytes().to_vec());
        parts.push(fnv1a(&[value.as_bytes()]).to_le_bytes().to_vec());
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    format!("{:016x}", fnv1a(&refs))
}

/// Parses `Retry-After`: delay-seconds, or an HTTP date (IMF-fixdate).
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some((secs * 1000.0) as u64);
        }
    }
    let at = parse_http_date(v)?;
    Some(at.saturating_mul(1000).saturating_sub(now_ms))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` → seconds since the epoch.
fn parse_http_date(v: &str) -> Option<u64> {
    let rest = v.split_once(", ")?.1;
    let mut it = rest.split_whitespace();
    let day: u64 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let (h, m, s): (u64, u64, u64) = (
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
    );
    if it.next()? != "GMT" || day == 0 || day > 31 || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day as i64);
    u64::try_from(days)
        .ok()
        .map(|d| d * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PoolSettings {
        PoolSettings::default()
    }

    fn pool(n: usize) -> PoolState {
        PoolState::fresh("fp", n)
    }

    const IDS: [&str; 3] = ["a", "b", "c"];

    fn keys(w: &[u32]) -> Vec<(&'static str, u32)> {
        IDS.iter().copied().zip(w.iter().copied()).collect()
    }

    fn pick(sel: &mut Selector, st: &PoolState, w: &[u32], tried: &[usize], now: u64) -> Pick {
        sel.pick(st, &keys(w), tried, None, now, &settings())
    }

    #[test]
    fn weights_spread_requests_exactly() {
        let st = pool(3);
        let mut sel = Selector::new(3);
        let mut counts = [0; 3];
        for _ in 0..60 {
            match pick(&mut sel, &st, &[3, 2, 1], &[], 0) {
                Pick::Key(i) => counts[i] += 1,
                p => panic!("{p:?}"),
            }
        }
        assert_eq!(counts, [30, 20, 10]);
    }

    #[test]
    fn rate_limited_key_cools_down_for_retry_after_then_gets_one_trial() {
        let s = settings();
        let mut st = pool(2);
        assert!(record(
            &mut st.keys[0],
            Outcome::RateLimited {
                retry_after_ms: Some(5_000)
            },
            1_000,
            &s
        ));
        assert_eq!(st.keys[0].state, State::Cooling);
        let mut sel = Selector::new(2);
        // While cooling, every request goes to the other key.
        for now in [1_000, 3_000, 5_999] {
            assert_eq!(pick(&mut sel, &st, &[1, 1], &[], now), Pick::Key(1));
        }
        // Due back: a single trial decides.
        assert_eq!(pick(&mut sel, &st, &[1, 1], &[], 6_000), Pick::Trial(0));
        start_trial(&mut st.keys[0], 6_000);
        assert_eq!(
            pick(&mut sel, &st, &[1, 1], &[], 6_001),
            Pick::Key(1),
            "only one trial at a time"
        );
        assert!(record(&mut st.keys[0], Outcome::Success, 6_100, &s));
        assert_eq!(st.keys[0], KeyHealth::default());
    }

    #[test]
    fn rate_limit_without_retry_after_uses_the_cooldown_and_is_capped() {
        let s = settings();
        let mut h = KeyHealth::default();
        record(
            &mut h,
            Outcome::RateLimited {
                retry_after_ms: None,
            },
            0,
            &s,
        );
        assert_eq!(h.until_ms, s.cooldown_ms);
        record(
            &mut h,
            Outcome::RateLimited {
                retry_after_ms: Some(10 * 3_600_000),
            },
            0,
            &s,
        );
        assert_eq!(h.until_ms, s.max_cooldown_ms);
    }

    #[test]
    fn a_released_trial_is_due_again_at_once() {
        let s = settings();
        let mut h = KeyHealth::default();
        record(
            &mut h,
            Outcome::RateLimited {
                retry_after_ms: Some(1_000),
            },
            0,
            &s,
        );
        start_trial(&mut h, 2_000);
        release_trial(&mut h, 2_500);
        assert_eq!((h.state, h.until_ms), (State::Cooling, 2_500));
        let mut st = pool(1);
        st.keys[0] = h;
        assert_eq!(
            pick(&mut Selector::new(1), &st, &[1], &[], 2_500),
            Pick::Trial(0)
        );
    }

    #[test]
    fn refused_keys_are_disabled_for_long() {
        let s = settings();
        let mut st = pool(2);
        record(&mut st.keys[1], Outcome::AuthFailed, 0, &s);
        assert_eq!(st.keys[1].state, State::Disabled);
        let mut sel = Selector::new(2);
        assert_eq!(
            pick(&mut sel, &st, &[1, 1], &[], s.auth_failure_cooldown_ms - 1),
            Pick::Key(0)
        );
        assert_eq!(
            pick(&mut sel, &st, &[1, 1], &[], s.auth_failure_cooldown_ms),
            Pick::Trial(1)
        );
    }

    #[test]
    fn repeated_failures_make_a_key_unhealthy_with_growing_backoff() {
        let s = settings();
        let mut h = KeyHealth::default();
        assert!(record(&mut h, Outcome::Failed, 0, &s));
        assert!(record(&mut h, Outcome::Failed, 0, &s));
        assert_eq!(
            h.state,
            State::Healthy,
            "below the threshold the key stays in service"
        );
        record(&mut h, Outcome::Failed, 100, &s);
        assert_eq!(
            (h.state, h.until_ms),
            (State::Unhealthy, 100 + s.unhealthy_backoff_ms)
        );
        // A failed trial doubles the backoff.
        start_trial(&mut h, 20_000);
        record(&mut h, Outcome::Failed, 20_000, &s);
        assert_eq!(
            (h.state, h.until_ms),
            (State::Unhealthy, 20_000 + 2 * s.unhealthy_backoff_ms)
        );
        start_trial(&mut h, 50_000);
        record(&mut h, Outcome::Failed, 50_000, &s);
        assert_eq!(h.until_ms, 50_000 + 4 * s.unhealthy_backoff_ms);
        // Capped.
        for _ in 0..20 {
            start_trial(&mut h, 0);
            record(&mut h, Outcome::Failed, 0, &s);
        }
        assert_eq!(h.until_ms, s.max_backoff_ms);
        // Recovery resets everything.
        record(&mut h, Outcome::Success, 0, &s);
        assert_eq!(h, KeyHealth::default());
    }

    #[test]
    fn a_success_on_a_healthy_key_writes_nothing() {
        let mut h = KeyHealth::default();
        assert!(!record(&mut h, Outcome::Success, 5, &settings()));
    }

    #[test]
    fn the_key_that_failed_for_this_request_is_never_chosen_again() {
        let st = pool(3);
        let mut sel = Selector::new(3);
        for _ in 0..10 {
            assert_ne!(pick(&mut sel, &st, &[1, 1, 1], &[1], 0), Pick::Key(1));
        }
        assert_eq!(pick(&mut sel, &st, &[1, 1, 1], &[0, 1], 0), Pick::Key(2));
    }

    #[test]
    fn all_down_fails_with_the_soonest_return_or_tries_the_oldest() {
        let mut s = settings();
        let mut st = pool(2);
        record(
            &mut st.keys[0],
            Outcome::RateLimited {
                retry_after_ms: Some(20_000),
            },
            0,
            &s,
        );
        record(
            &mut st.keys[1],
            Outcome::RateLimited {
                retry_after_ms: Some(7_000),
            },
            0,
            &s,
        );
        let mut sel = Selector::new(2);
        assert_eq!(
            sel.pick(&st, &keys(&[1, 1]), &[], None, 2_000, &s),
            Pick::AllDown {
                retry_after_ms: 5_000
            }
        );
        s.when_all_down = WhenAllDown::TryOldest;
        assert_eq!(
            sel.pick(&st, &keys(&[1, 1]), &[], None, 2_000, &s),
            Pick::Key(1)
        );
        // Never the key this request already tried, even then.
        assert_eq!(
            sel.pick(&st, &keys(&[1, 1]), &[1], None, 2_000, &s),
            Pick::Key(0)
        );
        assert!(matches!(
            sel.pick(&st, &keys(&[1, 1]), &[0, 1], None, 2_000, &s),
            Pick::AllDown { .. }
        ));
    }

    #[test]
    fn sticky_values_keep_their_key_while_it_is_healthy() {
        let s = settings();
        let mut st = pool(3);
        let mut sel = Selector::new(3);
        let first = sel.pick(&st, &keys(&[1, 1, 1]), &[], Some("session-42"), 0, &s);
        for _ in 0..5 {
            assert_eq!(
                sel.pick(&st, &keys(&[1, 1, 1]), &[], Some("session-42"), 0, &s),
                first
            );
        }
        // Sessions spread over the keys.
        let spread: std::collections::HashSet<_> = (0..50)
            .map(|n| sel.pick(&st, &keys(&[1, 1, 1]), &[], Some(&format!("s{n}")), 0, &s))
            .collect();
        assert_eq!(spread.len(), 3);
        // When its key cools down, the session moves, and comes back after.
        let Pick::Key(k) = first else { panic!() };
        record(
            &mut st.keys[k],
            Outcome::RateLimited {
                retry_after_ms: Some(1_000),
            },
            0,
            &s,
        );
        assert_ne!(
            sel.pick(&st, &keys(&[1, 1, 1]), &[], Some("session-42"), 10, &s),
            first
        );
    }

    #[test]
    fn state_survives_a_reload_with_the_same_keys_and_resets_when_they_change() {
        let fp1 = fingerprint(&[("a", 1, "sk-1"), ("b", 1, "sk-2")]);
        let fp2 = fingerprint(&[("a", 1, "sk-1"), ("b", 1, "sk-3")]);
        assert_ne!(fp1, fp2);
        assert_eq!(fp1, fingerprint(&[("a", 1, "sk-1"), ("b", 1, "sk-2")]));
        let mut st = PoolState::fresh(&fp1, 2);
        record(&mut st.keys[0], Outcome::AuthFailed, 0, &settings());
        let bytes = st.to_bytes();
        assert_eq!(PoolState::load(Some(&bytes), &fp1, 2), st);
        assert_eq!(
            PoolState::load(Some(&bytes), &fp2, 2),
            PoolState::fresh(&fp2, 2)
        );
        assert_eq!(
            PoolState::load(Some(b"garbage"), &fp1, 2),
            PoolState::fresh(&fp1, 2)
        );
        assert_eq!(PoolState::load(None, &fp1, 2), PoolState::fresh(&fp1, 2));
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("7", 0), Some(7_000));
        assert_eq!(parse_retry_after(" 1.5 ", 0), Some(1_500));
        // 1994-11-06T08:49:37Z = 784111777
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_770_000),
            Some(7_000)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_780_000),
            Some(0)
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 0),
            Some(1_445_412_480_000)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("Sun, 06 Foo 1994 08:49:37 GMT", 0), None);
    }

    #[test]
    fn tried_keys_are_remembered_per_request_and_bounded() {
        let mut t = TriedKeys::default();
        t.add("r1", 0, 0);
        t.add("r1", 2, 1);
        t.add("r1", 2, 2);
        t.add("r2", 1, 3);
        t.add("", 1, 3);
        assert_eq!(t.get("r1"), [0, 2]);
        assert_eq!(t.get("r2"), [1]);
        assert!(t.get("r3").is_empty());
        t.forget("r1");
        assert!(t.get("r1").is_empty());
        for i in 0..(TRIED_MAX + 10) {
            t.add(&format!("x{i}"), 0, i as u64);
        }
        assert!(t.len() <= TRIED_MAX);
        assert!(
            !t.get(&format!("x{}", TRIED_MAX + 9)).is_empty(),
            "the newest stay"
        );
        // Expired entries go as soon as the map grows a little.
        let mut t = TriedKeys::default();
        t.add("old", 1, 0);
        for i in 0..300 {
            t.add(&format!("new{i}"), 0, TRIED_TTL_MS + 1);
        }
        assert!(t.get("old").is_empty());
    }

    #[test]
    fn health_checks_restore_keys_that_answer_and_keep_out_the_others() {
        let s = settings();
        let mut st = pool(4);
        record(&mut st.keys[0], Outcome::AuthFailed, 0, &s);
        for _ in 0..3 {
            record(&mut st.keys[1], Outcome::Failed, 0, &s);
        }
        record(
            &mut st.keys[2],
            Outcome::RateLimited {
                retry_after_ms: Some(60_000),
            },
            0,
            &s,
        );
        // A rate-limited key keeps its Retry-After: not probed.
        assert_eq!(due_for_check(&st), [0, 1]);
        assert!(!record_check(&mut st.keys[2], 200, None, 1_000, &s));
        // A success brings a refused key back long before its hour is over.
        assert!(record_check(&mut st.keys[0], 200, None, 1_000, &s));
        assert_eq!(st.keys[0], KeyHealth::default());
        // Rate limited at its probe: cooling for the new Retry-After.
        assert!(record_check(&mut st.keys[1], 429, Some(5_000), 1_000, &s));
        assert_eq!(
            (st.keys[1].state, st.keys[1].until_ms),
            (State::Cooling, 6_000)
        );
        // An error says nothing about the key.
        let mut unhealthy = KeyHealth {
            state: State::Unhealthy,
            until_ms: 9,
            ..KeyHealth::default()
        };
        assert!(!record_check(&mut unhealthy, 503, None, 1_000, &s));
        // Healthy keys are not touched.
        assert!(!record_check(&mut st.keys[3], 401, None, 1_000, &s));
        assert!(due_for_check(&st).is_empty());
    }

    #[test]
    fn statuses_classify_outcomes() {
        assert_eq!(Outcome::of_status(200, None), Outcome::Success);
        assert_eq!(Outcome::of_status(400, None), Outcome::Success);
        assert_eq!(Outcome::of_status(404, None), Outcome::Success);
        assert_eq!(
            Outcome::of_status(429, Some(3)),
            Outcome::RateLimited {
                retry_after_ms: Some(3)
            }
        );
        assert_eq!(Outcome::of_status(401, None), Outcome::AuthFailed);
        assert_eq!(Outcome::of_status(403, None), Outcome::AuthFailed);
        assert_eq!(Outcome::of_status(503, None), Outcome::Failed);
        assert_eq!(Outcome::of_status(0, None), Outcome::Failed);
    }
}
