//! Bounded-memory recording: HDR histograms in microseconds, and the SSE event counter.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest value a histogram holds: 10 minutes in µs (larger values are clamped).
const MAX_US: u64 = 600_000_000;

/// A latency histogram in µs, 3 significant digits: a few hundred KiB whatever the count.
pub struct Hist(Option<Histogram<u64>>);

impl Hist {
    pub fn new() -> Self {
        Hist(Histogram::new_with_bounds(1, MAX_US, 3).ok())
    }

    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros())
            .unwrap_or(MAX_US)
            .clamp(1, MAX_US);
        if let Some(h) = self.0.as_mut() {
            // saturating_record never fails: values out of range are clamped.
            h.saturating_record(us);
        }
    }

    pub fn add(&mut self, other: &Hist) {
        if let (Some(a), Some(b)) = (self.0.as_mut(), other.0.as_ref()) {
            // Same bounds on both sides, so this cannot fail; ignore the impossible error.
            let _ = a.add(b);
        }
    }

    pub fn summary(&self) -> Option<Summary> {
        let h = self.0.as_ref()?;
        if h.is_empty() {
            return None;
        }
        Some(Summary {
            count: h.len(),
            mean: (h.mean() * 10.0).round() / 10.0,
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            max: h.max(),
            min: h.min(),
        })
    }
}

/// Percentiles in µs.
#[derive(Debug, Serialize, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub mean: f64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
}

/// Everything one worker measured; merged at the end.
pub struct Recorder {
    /// From the intended start (open mode) or the send (other modes) to the last byte.
    pub latency: Hist,
    /// From the moment the request was actually sent to the last byte.
    pub service: Hist,
    /// SSE: from the same start as `latency` to the first complete event.
    pub ttft: Hist,
    /// SSE: between consecutive complete events of one response (0 when they arrive together).
    pub gap: Hist,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub sse_responses: u64,
    pub events_total: u64,
    pub events_min: Option<u64>,
    pub events_max: u64,
    pub bytes: u64,
    /// Successful completions that ended within the sending window.
    pub ok_in_window: u64,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            latency: Hist::new(),
            service: Hist::new(),
            ttft: Hist::new(),
            gap: Hist::new(),
            ok: 0,
            errors: BTreeMap::new(),
            sse_responses: 0,
            events_total: 0,
            events_min: None,
            events_max: 0,
            bytes: 0,
            ok_in_window: 0,
        }
    }

    pub fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_insert(0) += 1;
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn events(&mut self, n: u64) {
        self.sse_responses += 1;
        self.events_total += n;
        self.events_min = Some(self.events_min.map_or(n, |m| m.min(n)));
        self.events_max = self.events_max.max(n);
    }

    pub fn merge(&mut self, o: Recorder) {
        self.latency.add(&o.latency);
        self.service.add(&o.service);
        self.ttft.add(&o.ttft);
        self.gap.add(&o.gap);
        self.ok += o.ok;
        self.ok_in_window += o.ok_in_window;
        for (k, v) in o.errors {
            *self.errors.entry(k).or_insert(0) += v;
        }
        self.sse_responses += o.sse_responses;
        self.events_total += o.events_total;
        self.events_min = match (self.events_min, o.events_min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.events_max = self.events_max.max(o.events_max);
        self.bytes += o.bytes;
    }
}

/// Counts SSE events (`\n\n`-terminated) in a byte stream fed frame by frame, across frame
/// boundaries. (`\r\n\r\n` framing is not counted; the benchmark's streams are OpenAI's.)
#[derive(Default)]
pub struct EventCounter {
    last_was_newline: bool,
}

impl EventCounter {
    /// The number of events that end in `frame`.
    pub fn feed(&mut self, frame: &[u8]) -> u64 {
        let mut n = 0;
        for &b in frame {
            if b == b'\n' {
                if self.last_was_newline {
                    n += 1;
                    self.last_was_newline = false;
                } else {
                    self.last_was_newline = true;
                }
            } else {
                self.last_was_newline = false;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_events_split_at_every_byte() {
        let stream = b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
        for cut in 0..stream.len() {
            let mut c = EventCounter::default();
            let n = c.feed(&stream[..cut]) + c.feed(&stream[cut..]);
            assert_eq!(n, 3, "cut at {cut}");
        }
    }

    #[test]
    fn summarises_in_microseconds() {
        let mut h = Hist::new();
        assert!(h.summary().is_none());
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let s = h.summary().unwrap();
        assert_eq!(s.count, 1000);
        assert_eq!(s.p50, 500);
        assert_eq!(s.max, 1000);
        assert!(s.p99 >= 990 && s.p99 <= 991);
    }
}
