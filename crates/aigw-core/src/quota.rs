//! Consumer budgets: request and token limits per period, concurrency, and the
//! reservation ledger that enforces them.
//!
//! A request reserves its estimated tokens before any provider is called and
//! settles with the real count when it ends. Counters live in fixed windows
//! aligned to the UTC clock (a minute, hour, day or calendar month) or in one
//! window that never ends (`total`). When a window ends, its counters start
//! again from zero; reservations made in the old window no longer hold tokens
//! in the new one, and their real usage is charged to the window they end in.
//! So concurrent requests can overshoot a limit by at most what they have in
//! flight.
//!
//! The ledger of one consumer is one value in a [`QuotaStore`], changed with
//! compare-and-swap: every Envoy worker (and, with a shared store, every Envoy
//! instance) sees one budget.

use serde::{Deserialize, Serialize};

/// How long a window lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Minute,
    Hour,
    Day,
    Month,
    /// One window for ever: a budget that never resets.
    Total,
}

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
            Period::Total => "total",
        }
    }

    /// The index of the window `now_ms` (milliseconds since the epoch) falls in.
    pub fn window(self, now_ms: u64) -> u64 {
        match self {
            Period::Minute => now_ms / MINUTE_MS,
            Period::Hour => now_ms / HOUR_MS,
            Period::Day => now_ms / DAY_MS,
            Period::Month => {
                let (y, m) = year_month(now_ms / DAY_MS);
                y * 12 + (m - 1)
            }
            Period::Total => 0,
        }
    }

    /// When the window `now_ms` falls in ends; `None` for `total`.
    pub fn window_end_ms(self, now_ms: u64) -> Option<u64> {
        let next = |len: u64| (now_ms / len + 1) * len;
        match self {
            Period::Minute => Some(next(MINUTE_MS)),
            Period::Hour => Some(next(HOUR_MS)),
            Period::Day => Some(next(DAY_MS)),
            Period::Month => {
                let (y, m) = year_month(now_ms / DAY_MS);
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                Some(days_from_civil(y, m) * DAY_MS)
            }
            Period::Total => None,
        }
    }
}

/// The (year, month 1..=12) of a day counted from 1970-01-01 (proleptic Gregorian).
fn year_month(days: u64) -> (u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m)
}

/// Days from 1970-01-01 to the first day of month `m` of year `y` (y >= 1970).
fn days_from_civil(y: u64, m: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Measure {
    #[serde(rename = "r")]
    Requests,
    #[serde(rename = "t")]
    Tokens,
}

/// At most `max` of `measure` per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub measure: Measure,
    pub period: Period,
    pub max: u64,
}

/// Every limit of one consumer (at most one per measure and period).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub windows: Vec<Limit>,
    /// Requests in flight at once.
    pub concurrent: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty() && self.concurrent.is_none()
    }

    /// Whether a token limit is set (requests then need a token estimate).
    pub fn counts_tokens(&self) -> bool {
        self.windows.iter().any(|l| l.measure == Measure::Tokens)
    }
}

/// One counter of the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    #[serde(rename = "m")]
    pub measure: Measure,
    #[serde(rename = "p")]
    pub period: Period,
    /// The window the counts belong to.
    #[serde(rename = "w")]
    pub window: u64,
    /// Settled (or, for requests, admitted) in this window.
    #[serde(rename = "u")]
    pub used: u64,
    /// Reserved by requests in flight that were admitted in this window.
    #[serde(rename = "h", default)]
    pub held: u64,
}

/// The stored state of one consumer's budget.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Requests in flight.
    #[serde(rename = "f", default)]
    pub in_flight: u64,
    #[serde(rename = "c", default)]
    pub counters: Vec<Counter>,
}

/// What a request holds until it settles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reservation {
    /// Tokens reserved.
    pub tokens: u64,
    /// The windows the tokens are held in: (period, window index).
    pub held_in: Vec<(Period, u64)>,
    /// Whether the request counts as in flight.
    pub concurrent: bool,
}

/// How much of one limit is left, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    pub limit: u64,
    pub remaining: u64,
    pub period: Period,
    /// Milliseconds until the window ends (`None` for `total`).
    pub reset_ms: Option<u64>,
}

/// The state of a consumer's request and token limits after a decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateStatus {
    /// The requests limit with the least left.
    pub requests: Option<Remaining>,
    /// The tokens limit with the least left.
    pub tokens: Option<Remaining>,
}

/// A request admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub reservation: Reservation,
    pub status: RateStatus,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The requests limit of this period is reached.
    Requests(Period),
    /// The tokens left in this period's window do not cover the reservation.
    Tokens(Period),
    /// The tokens used in this period's window leave enough, but requests in
    /// flight hold them: retrying soon can succeed, when they settle.
    Held(Period),
    /// The reservation alone is more than this period's whole limit: retrying
    /// cannot help.
    TooLarge(Period),
    /// As many requests as allowed are in flight.
    Concurrency,
}

/// A request refused before any provider was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial {
    pub reason: DenyReason,
    /// The limit that refused.
    pub limit: u64,
    /// The tokens the request asked to reserve.
    pub requested: u64,
    /// When trying again can succeed (`None`: not by waiting in this window).
    pub retry_after_ms: Option<u64>,
    pub status: RateStatus,
}

/// How long a client is told to wait when requests in flight block it (its
/// concurrency limit, or tokens they hold).
const IN_FLIGHT_RETRY_MS: u64 = 1_000;

impl Ledger {
    /// Drops the counters of limits no longer configured. Only at admission,
    /// under the current configuration: a request admitted under an older one
    /// may settle later and must not wipe the new counters.
    fn prune(&mut self, limits: &Limits) {
        self.counters.retain(|c| {
            limits
                .windows
                .iter()
                .any(|l| l.measure == c.measure && l.period == c.period)
        });
        if limits.concurrent.is_none() {
            self.in_flight = 0;
        }
    }

    /// Starts counters whose window has ended and creates missing ones.
    fn roll(&mut self, limits: &Limits, now_ms: u64) {
        for l in &limits.windows {
            let window = l.period.window(now_ms);
            match self
                .counters
                .iter_mut()
                .find(|c| c.measure == l.measure && c.period == l.period)
            {
                Some(c) if c.window == window => {}
                Some(c) => {
                    *c = Counter {
                        window,
                        used: 0,
                        held: 0,
                        ..*c
                    }
                }
                None => self.counters.push(Counter {
                    measure: l.measure,
                    period: l.period,
                    window,
                    used: 0,
                    held: 0,
                }),
            }
        }
    }

    fn counter(&self, measure: Measure, period: Period) -> Option<&Counter> {
        self.counters
            .iter()
            .find(|c| c.measure == measure && c.period == period)
    }

    /// What is left of each limit now.
    pub fn status(&self, limits: &Limits, now_ms: u64) -> RateStatus {
        let mut status = RateStatus::default();
        for l in &limits.windows {
            let (used, held) = self
                .counter(l.measure, l.period)
                .filter(|c| c.window == l.period.window(now_ms))
                .map_or((0, 0), |c| (c.used, c.held));
            let r = Remaining {
                limit: l.max,
                remaining: l.max.saturating_sub(used.saturating_add(held)),
                period: l.period,
                reset_ms: l
                    .period
                    .window_end_ms(now_ms)
                    .map(|end| end.saturating_sub(now_ms)),
            };
            let slot = match l.measure {
                Measure::Requests => &mut status.requests,
                Measure::Tokens => &mut status.tokens,
            };
            if slot.is_none_or(|s| r.remaining < s.remaining) {
                *slot = Some(r);
            }
        }
        status
    }

    /// Admits a request that reserves `tokens`, or says why not. Nothing
    /// changes when the request is refused.
    pub fn reserve(&mut self, limits: &Limits, tokens: u64, now_ms: u64) -> Result<Grant, Denial> {
        self.prune(limits);
        self.roll(limits, now_ms);
        let deny = |ledger: &Ledger, reason, limit, retry_after_ms| Denial {
            reason,
            limit,
            requested: tokens,
            retry_after_ms,
            status: ledger.status(limits, now_ms),
        };
        if let Some(max) = limits.concurrent {
            if self.in_flight >= max {
                return Err(deny(
                    self,
                    DenyReason::Concurrency,
                    max,
                    Some(IN_FLIGHT_RETRY_MS),
                ));
            }
        }
        // The limit whose window ends last decides when to retry: waiting for
        // an earlier one alone would not be enough.
        let mut refusal: Option<Denial> = None;
        for l in &limits.windows {
            let Some(c) = self.counter(l.measure, l.period) else {
                continue;
            };
            let wait = l
                .period
                .window_end_ms(now_ms)
                .map(|end| end.saturating_sub(now_ms));
            let reason = match l.measure {
                Measure::Requests if c.used.saturating_add(1) > l.max => {
                    DenyReason::Requests(l.period)
                }
                Measure::Tokens if tokens > l.max => DenyReason::TooLarge(l.period),
                Measure::Tokens if c.used.saturating_add(tokens) > l.max => {
                    DenyReason::Tokens(l.period)
                }
                Measure::Tokens if c.used.saturating_add(c.held).saturating_add(tokens) > l.max => {
                    DenyReason::Held(l.period)
                }
                _ => continue,
            };
            let wait = match reason {
                DenyReason::TooLarge(_) => None,
                DenyReason::Held(_) => Some(IN_FLIGHT_RETRY_MS.min(wait.unwrap_or(u64::MAX))),
                _ => wait,
            };
            let worse = match &refusal {
                None => true,
                Some(prev) => match (prev.retry_after_ms, wait) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(a), Some(b)) => b > a,
                },
            };
            if worse {
                refusal = Some(deny(self, reason, l.max, wait));
            }
        }
        if let Some(d) = refusal {
            return Err(d);
        }
        let mut held_in = Vec::new();
        for c in &mut self.counters {
            match c.measure {
                Measure::Requests => c.used = c.used.saturating_add(1),
                Measure::Tokens => {
                    c.held = c.held.saturating_add(tokens);
                    held_in.push((c.period, c.window));
                }
            }
        }
        let concurrent = limits.concurrent.is_some();
        if concurrent {
            self.in_flight = self.in_flight.saturating_add(1);
        }
        Ok(Grant {
            reservation: Reservation {
                tokens,
                held_in,
                concurrent,
            },
            status: self.status(limits, now_ms),
        })
    }

    /// Ends a request: releases what it reserved and charges `used_tokens` to
    /// the current windows.
    pub fn settle(
        &mut self,
        limits: &Limits,
        reservation: &Reservation,
        used_tokens: u64,
        now_ms: u64,
    ) {
        self.roll(limits, now_ms);
        for c in &mut self.counters {
            if c.measure != Measure::Tokens {
                continue;
            }
            if reservation
                .held_in
                .iter()
                .any(|(p, w)| *p == c.period && *w == c.window)
            {
                c.held = c.held.saturating_sub(reservation.tokens);
            }
            c.used = c.used.saturating_add(used_tokens);
        }
        if reservation.concurrent {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a stored ledger; an unreadable one (e.g. written by another
    /// version) starts afresh.
    pub fn from_bytes(bytes: Option<&[u8]>) -> Ledger {
        bytes
            .filter(|b| !b.is_empty())
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default()
    }
}

/// Where ledgers are kept: a key-value store with compare-and-swap.
///
/// Envoy's shared data (one per Envoy process, shared by its workers) is the
/// store the filter uses; a store shared by several Envoy instances (e.g.
/// Redis) fits the same seam.
pub trait QuotaStore {
    /// The value under `key` and its version (`None` for an absent key).
    fn load(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u64>), StoreError>;
    /// Writes `value` if the key is still at `version` (`None`: unconditionally).
    fn store(&self, key: &str, value: &[u8], version: Option<u64>) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("changed by someone else since it was read")]
    Conflict,
    #[error("{0}")]
    Failed(String),
}

/// Attempts at an admission before giving up on contention (the client then
/// gets 503 and may retry).
const RESERVE_ATTEMPTS: usize = 32;

/// Attempts at a settlement: a lost settlement would hold its tokens and its
/// concurrency slot, so it tries much longer. Each conflict means another
/// request made progress, so this ends.
const SETTLE_ATTEMPTS: usize = 1_024;

/// Applies `change` to the ledger under `key` with compare-and-swap, retrying
/// when another writer got there first. `change` returns what to report and
/// whether to write.
pub fn update<S, T, F>(
    store: &S,
    key: &str,
    attempts: usize,
    mut change: F,
) -> Result<T, StoreError>
where
    S: QuotaStore + ?Sized,
    F: FnMut(&mut Ledger) -> (T, bool),
{
    for _ in 0..attempts {
        let (bytes, version) = store.load(key)?;
        let mut ledger = Ledger::from_bytes(bytes.as_deref());
        let (out, write) = change(&mut ledger);
        if !write {
            return Ok(out);
        }
        match store.store(key, &ledger.to_bytes(), version) {
            Ok(()) => return Ok(out),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Failed(format!(
        "{key}: still contended after {attempts} attempts"
    )))
}

/// Reserves `tokens` for a request of the consumer whose ledger is `key`.
pub fn reserve<S: QuotaStore + ?Sized>(
    store: &S,
    key: &str,
    limits: &Limits,
    tokens: u64,
    now_ms: u64,
) -> Result<Result<Grant, Denial>, StoreError> {
    update(store, key, RESERVE_ATTEMPTS, |ledger| {
        let result = ledger.reserve(limits, tokens, now_ms);
        let write = result.is_ok();
        (result, write)
    })
}

/// Settles a request's reservation with the tokens it used.
pub fn settle<S: QuotaStore + ?Sized>(
    store: &S,
    key: &str,
    limits: &Limits,
    reservation: &Reservation,
    used_tokens: u64,
    now_ms: u64,
) -> Result<(), StoreError> {
    update(store, key, SETTLE_ATTEMPTS, |ledger| {
        ledger.settle(limits, reservation, used_tokens, now_ms);
        ((), true)
    })
}

/// A duration as OpenAI writes it in `x-ratelimit-reset-*`: `1s`, `6m0s`,
/// `1h2m3s`, `20ms`.
pub fn reset_text(ms: u64) -> String {
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let secs = ms.div_ceil(1_000);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;

    /// 2026-03-31T23:59:30Z.
    const T0: u64 = 1_775_001_570_000;

    fn limits(windows: &[(Measure, Period, u64)], concurrent: Option<u64>) -> Limits {
        Limits {
            windows: windows
                .iter()
                .map(|&(measure, period, max)| Limit {
                    measure,
                    period,
                    max,
                })
                .collect(),
            concurrent,
        }
    }

    #[test]
    fn windows_follow_the_utc_calendar() {
        assert_eq!(Period::Minute.window_end_ms(T0), Some(T0 + 30_000));
        assert_eq!(Period::Hour.window_end_ms(T0), Some(T0 + 30_000));
        assert_eq!(Period::Day.window_end_ms(T0), Some(T0 + 30_000));
        // March ends at the same moment: 2026-04-01T00:00:00Z.
        assert_eq!(Period::Month.window_end_ms(T0), Some(T0 + 30_000));
        assert_eq!(
            Period::Month.window(T0 + 30_000),
            Period::Month.window(T0) + 1
        );
        // 2024-02 is a leap February: 29 days to March.
        let feb_2024 = days_from_civil(2024, 2) * DAY_MS;
        assert_eq!(year_month(feb_2024 / DAY_MS), (2024, 2));
        assert_eq!(
            Period::Month.window_end_ms(feb_2024 + 5),
            Some(feb_2024 + 29 * DAY_MS)
        );
        // December rolls into January of the next year.
        let dec = days_from_civil(2025, 12) * DAY_MS;
        assert_eq!(
            Period::Month.window_end_ms(dec),
            Some(days_from_civil(2026, 1) * DAY_MS)
        );
        assert_eq!(days_from_civil(1970, 1), 0);
        assert_eq!(Period::Total.window_end_ms(T0), None);
        assert_eq!(Period::Total.window(T0), Period::Total.window(T0 * 2));
    }

    #[test]
    fn tokens_are_reserved_then_settled_at_the_real_count() {
        let l = limits(&[(Measure::Tokens, Period::Day, 1_000)], None);
        let mut ledger = Ledger::default();
        let g = ledger.reserve(&l, 300, T0).unwrap();
        assert_eq!(g.status.tokens.unwrap().remaining, 700);
        let g2 = ledger.reserve(&l, 600, T0).unwrap();
        assert_eq!(g2.status.tokens.unwrap().remaining, 100);
        // In flight: 900 held; 200 more does not fit until they settle.
        let d = ledger.reserve(&l, 200, T0).unwrap_err();
        assert_eq!(d.reason, DenyReason::Held(Period::Day));
        assert_eq!(d.retry_after_ms, Some(IN_FLIGHT_RETRY_MS));
        // The first used 50 of its 300: 250 come back.
        ledger.settle(&l, &g.reservation, 50, T0 + 1);
        assert_eq!(ledger.status(&l, T0 + 1).tokens.unwrap().remaining, 350);
        assert!(ledger.reserve(&l, 200, T0 + 2).is_ok());
    }

    #[test]
    fn a_reservation_larger_than_the_limit_is_refused_for_good() {
        let l = limits(
            &[
                (Measure::Tokens, Period::Minute, 100),
                (Measure::Tokens, Period::Day, 10_000),
            ],
            None,
        );
        let d = Ledger::default().reserve(&l, 101, T0).unwrap_err();
        assert_eq!(d.reason, DenyReason::TooLarge(Period::Minute));
        assert_eq!(d.retry_after_ms, None);
        assert_eq!((d.limit, d.requested), (100, 101));
    }

    #[test]
    fn requests_per_minute_count_at_admission_and_reset_with_the_minute() {
        let l = limits(&[(Measure::Requests, Period::Minute, 2)], None);
        let mut ledger = Ledger::default();
        let a = ledger.reserve(&l, 10, T0).unwrap();
        assert_eq!(a.status.requests.unwrap().remaining, 1);
        assert_eq!(a.status.requests.unwrap().reset_ms, Some(30_000));
        assert_eq!(a.status.tokens, None);
        ledger.reserve(&l, 10, T0).unwrap();
        let d = ledger.reserve(&l, 10, T0 + 29_999).unwrap_err();
        assert_eq!(d.reason, DenyReason::Requests(Period::Minute));
        assert_eq!(d.retry_after_ms, Some(1));
        // Settling does not give a request back.
        ledger.settle(&l, &a.reservation, 10, T0 + 1);
        assert!(ledger.reserve(&l, 10, T0 + 2).is_err());
        // The next minute starts from zero.
        assert!(ledger.reserve(&l, 10, T0 + 30_000).is_ok());
    }

    #[test]
    fn concurrency_is_released_at_settlement() {
        let l = limits(&[], Some(1));
        let mut ledger = Ledger::default();
        let a = ledger.reserve(&l, 0, T0).unwrap();
        let d = ledger.reserve(&l, 0, T0).unwrap_err();
        assert_eq!(d.reason, DenyReason::Concurrency);
        assert_eq!(d.retry_after_ms, Some(IN_FLIGHT_RETRY_MS));
        ledger.settle(&l, &a.reservation, 0, T0);
        assert!(ledger.reserve(&l, 0, T0).is_ok());
    }

    #[test]
    fn a_reservation_from_an_ended_window_releases_nothing_in_the_new_one() {
        let l = limits(&[(Measure::Tokens, Period::Minute, 1_000)], None);
        let mut ledger = Ledger::default();
        let old = ledger.reserve(&l, 800, T0).unwrap();
        // A new minute: the counters start over; the old reservation no longer holds.
        let new = ledger.reserve(&l, 900, T0 + 30_000).unwrap();
        assert_eq!(new.status.tokens.unwrap().remaining, 100);
        // The old request ends in the new minute: its real usage is charged
        // here, but it must not release the new request's hold.
        ledger.settle(&l, &old.reservation, 120, T0 + 31_000);
        let c = ledger.counters[0];
        assert_eq!((c.used, c.held), (120, 900));
        // Over by what was in flight across the boundary, never more.
        assert_eq!(ledger.status(&l, T0 + 31_000).tokens.unwrap().remaining, 0);
        ledger.settle(&l, &new.reservation, 10, T0 + 32_000);
        assert_eq!(
            ledger.status(&l, T0 + 32_000).tokens.unwrap().remaining,
            1_000 - 130
        );
    }

    #[test]
    fn a_failed_request_settles_at_zero_and_gives_its_tokens_back() {
        let l = limits(
            &[
                (Measure::Tokens, Period::Total, 500),
                (Measure::Requests, Period::Minute, 10),
            ],
            Some(5),
        );
        let mut ledger = Ledger::default();
        let g = ledger.reserve(&l, 400, T0).unwrap();
        assert_eq!(ledger.in_flight, 1);
        ledger.settle(&l, &g.reservation, 0, T0 + 10);
        let s = ledger.status(&l, T0 + 10);
        assert_eq!(s.tokens.unwrap().remaining, 500);
        assert_eq!(s.tokens.unwrap().reset_ms, None);
        assert_eq!(s.requests.unwrap().remaining, 9);
        assert_eq!(ledger.in_flight, 0);
    }

    #[test]
    fn a_total_budget_never_resets() {
        let l = limits(&[(Measure::Tokens, Period::Total, 100)], None);
        let mut ledger = Ledger::default();
        let g = ledger.reserve(&l, 60, T0).unwrap();
        ledger.settle(&l, &g.reservation, 90, T0);
        let d = ledger.reserve(&l, 20, T0 + 365 * DAY_MS).unwrap_err();
        assert_eq!(d.reason, DenyReason::Tokens(Period::Total));
        assert_eq!(d.retry_after_ms, None);
        assert!(ledger.reserve(&l, 10, T0 + 365 * DAY_MS).is_ok());
    }

    #[test]
    fn the_latest_window_decides_when_to_retry() {
        let l = limits(
            &[
                (Measure::Tokens, Period::Minute, 100),
                (Measure::Tokens, Period::Hour, 100),
            ],
            None,
        );
        let mut ledger = Ledger::default();
        let g = ledger.reserve(&l, 100, T0 - 10 * MINUTE_MS).unwrap();
        ledger.settle(&l, &g.reservation, 100, T0 - 10 * MINUTE_MS);
        let d = ledger.reserve(&l, 1, T0).unwrap_err();
        assert_eq!(d.reason, DenyReason::Tokens(Period::Hour));
        assert_eq!(d.retry_after_ms, Some(30_000));
        assert_eq!(d.status.tokens.unwrap().remaining, 0);
    }

    #[test]
    fn a_spent_budget_and_one_held_by_requests_in_flight_are_told_apart() {
        let l = limits(&[(Measure::Tokens, Period::Total, 1_000)], None);
        let mut ledger = Ledger::default();
        let g = ledger.reserve(&l, 900, T0).unwrap();
        // Only holds block: the client may retry soon.
        let d = ledger.reserve(&l, 200, T0).unwrap_err();
        assert_eq!(d.reason, DenyReason::Held(Period::Total));
        assert_eq!(d.retry_after_ms, Some(IN_FLIGHT_RETRY_MS));
        // Used for real: spent for good.
        ledger.settle(&l, &g.reservation, 900, T0);
        let d = ledger.reserve(&l, 200, T0).unwrap_err();
        assert_eq!(d.reason, DenyReason::Tokens(Period::Total));
        assert_eq!(d.retry_after_ms, None);
        // A window that ends sooner than a second waits for its end.
        let m = limits(&[(Measure::Tokens, Period::Minute, 100)], None);
        let mut ledger = Ledger::default();
        ledger.reserve(&m, 100, T0 + 29_500).unwrap();
        let d = ledger.reserve(&m, 1, T0 + 29_500).unwrap_err();
        assert_eq!(d.retry_after_ms, Some(500));
    }

    #[test]
    fn a_request_admitted_under_an_older_config_settles_without_wiping_the_new_counters() {
        let old = limits(&[(Measure::Tokens, Period::Day, 1_000)], None);
        let new = limits(&[(Measure::Requests, Period::Minute, 5)], Some(1));
        let mut ledger = Ledger::default();
        let g = ledger.reserve(&old, 100, T0).unwrap();
        ledger.reserve(&new, 0, T0).unwrap();
        ledger.settle(&old, &g.reservation, 10, T0);
        assert_eq!(ledger.in_flight, 1);
        assert_eq!(ledger.status(&new, T0).requests.unwrap().remaining, 4);
        assert_eq!(
            ledger.reserve(&new, 0, T0).unwrap_err().reason,
            DenyReason::Concurrency
        );
    }

    #[test]
    fn limits_removed_from_the_config_leave_the_ledger() {
        let mut ledger = Ledger::default();
        let both = limits(
            &[
                (Measure::Tokens, Period::Day, 10),
                (Measure::Requests, Period::Minute, 10),
            ],
            Some(1),
        );
        ledger.reserve(&both, 1, T0).unwrap();
        let fewer = limits(&[(Measure::Tokens, Period::Day, 10)], None);
        ledger.prune(&fewer);
        assert_eq!(ledger.counters.len(), 1);
        assert_eq!(ledger.in_flight, 0);
        // Raised limit, same period: what was used stays counted.
        let raised = limits(&[(Measure::Tokens, Period::Day, 20)], None);
        assert_eq!(ledger.status(&raised, T0).tokens.unwrap().remaining, 19);
    }

    #[test]
    fn ledgers_round_trip_and_bad_bytes_start_afresh() {
        let l = limits(&[(Measure::Tokens, Period::Day, 10)], Some(2));
        let mut ledger = Ledger::default();
        ledger.reserve(&l, 3, T0).unwrap();
        assert_eq!(Ledger::from_bytes(Some(&ledger.to_bytes())), ledger);
        assert_eq!(Ledger::from_bytes(Some(b"{oops")), Ledger::default());
        assert_eq!(Ledger::from_bytes(None), Ledger::default());
    }

    #[test]
    fn reset_text_is_openai_style() {
        assert_eq!(reset_text(20), "20ms");
        assert_eq!(reset_text(1_000), "1s");
        assert_eq!(reset_text(1_001), "2s");
        assert_eq!(reset_text(360_000), "6m0s");
        assert_eq!(reset_text(3_723_000), "1h2m3s");
    }

    type Intruder = Box<dyn FnMut(&mut Ledger)>;

    /// An in-memory store that can make the next writes conflict, as if
    /// another worker wrote first.
    #[derive(Default)]
    struct FakeStore {
        data: RefCell<HashMap<String, (Vec<u8>, u64)>>,
        conflicts: RefCell<u32>,
        /// Runs before a conflicting write: the other worker's change.
        intruder: RefCell<Option<Intruder>>,
    }

    impl QuotaStore for FakeStore {
        fn load(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u64>), StoreError> {
            Ok(match self.data.borrow().get(key) {
                Some((v, ver)) => (Some(v.clone()), Some(*ver)),
                None => (None, None),
            })
        }

        fn store(&self, key: &str, value: &[u8], version: Option<u64>) -> Result<(), StoreError> {
            if *self.conflicts.borrow() > 0 {
                *self.conflicts.borrow_mut() -= 1;
                if let Some(f) = self.intruder.borrow_mut().as_mut() {
                    let mut data = self.data.borrow_mut();
                    let entry = data.entry(key.to_string()).or_insert((Vec::new(), 0));
                    let mut ledger = Ledger::from_bytes(Some(&entry.0));
                    f(&mut ledger);
                    *entry = (ledger.to_bytes(), entry.1 + 1);
                }
                return Err(StoreError::Conflict);
            }
            let mut data = self.data.borrow_mut();
            let current = data.get(key).map(|(_, v)| *v);
            if version.is_some() && current != version {
                return Err(StoreError::Conflict);
            }
            data.insert(key.to_string(), (value.to_vec(), current.unwrap_or(0) + 1));
            Ok(())
        }
    }

    #[test]
    fn a_concurrent_writer_is_seen_before_admitting() {
        let l = limits(&[(Measure::Tokens, Period::Day, 1_000)], None);
        let store = FakeStore::default();
        // Another worker reserves 900 between our read and our write.
        *store.conflicts.borrow_mut() = 1;
        *store.intruder.borrow_mut() = Some(Box::new(move |ledger: &mut Ledger| {
            let l = limits(&[(Measure::Tokens, Period::Day, 1_000)], None);
            ledger.reserve(&l, 900, T0).unwrap();
        }));
        let outcome = reserve(&store, "c", &l, 200, T0).unwrap();
        assert_eq!(outcome.unwrap_err().reason, DenyReason::Held(Period::Day));
        let g = reserve(&store, "c", &l, 100, T0).unwrap().unwrap();
        settle(&store, "c", &l, &g.reservation, 40, T0).unwrap();
        let (bytes, _) = store.load("c").unwrap();
        let ledger = Ledger::from_bytes(bytes.as_deref());
        assert_eq!(
            ledger.status(&l, T0).tokens.unwrap().remaining,
            1_000 - 900 - 40
        );
    }

    #[test]
    fn endless_contention_is_an_error_not_a_hang() {
        let l = limits(&[(Measure::Tokens, Period::Day, 1_000)], None);
        let store = FakeStore::default();
        *store.conflicts.borrow_mut() = u32::MAX;
        assert!(matches!(
            reserve(&store, "c", &l, 1, T0),
            Err(StoreError::Failed(_))
        ));
    }
}
