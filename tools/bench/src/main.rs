//! `aigw-bench`: the benchmark's load generator. Open loop on a fixed schedule with latency
//! measured from each request's intended start (coordinated omission corrected), closed loop
//! for capacity, or one request at a time; SSE time to first event and gaps between events.
//! Prints one JSON object. See README.md.

mod args;
mod load;
mod stats;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;

use crate::args::{Args, Command, Mode};
use crate::load::{Outcome, Template};
use crate::stats::Summary;

#[derive(Serialize)]
struct Events {
    responses: u64,
    per_response_mean: f64,
    per_response_min: Option<u64>,
    per_response_max: u64,
}

#[derive(Serialize)]
struct Report {
    mode: &'static str,
    url: String,
    target_rate: Option<f64>,
    duration_s: f64,
    connections: usize,
    requests: u64,
    ok: u64,
    errors: u64,
    error_kinds: BTreeMap<String, u64>,
    unfinished: u64,
    elapsed_s: f64,
    /// Successful responses per second: completions within the sending window over its length
    /// (open, closed), or over the whole time (sequential).
    achieved_rate: f64,
    bytes_received: u64,
    latency_us: Option<Summary>,
    service_us: Option<Summary>,
    ttft_us: Option<Summary>,
    gap_us: Option<Summary>,
    events: Option<Events>,
}

fn report(args: &Args, out: Outcome) -> Report {
    let rec = out.rec;
    let window = match args.mode {
        Mode::Sequential => out.elapsed.as_secs_f64(),
        Mode::Open | Mode::Closed => args.duration.as_secs_f64(),
    };
    let completed = match args.mode {
        Mode::Sequential => rec.ok,
        Mode::Open | Mode::Closed => rec.ok_in_window,
    };
    let events = (rec.sse_responses > 0).then(|| Events {
        responses: rec.sse_responses,
        per_response_mean: rec.events_total as f64 / rec.sse_responses as f64,
        per_response_min: rec.events_min,
        per_response_max: rec.events_max,
    });
    Report {
        mode: args.mode.as_str(),
        url: args.url.to_string(),
        target_rate: match args.mode {
            Mode::Open => args.rate,
            Mode::Closed | Mode::Sequential => None,
        },
        duration_s: window,
        connections: match args.mode {
            Mode::Sequential => 1,
            Mode::Open | Mode::Closed => args.connections,
        },
        requests: out.requests,
        ok: rec.ok,
        errors: rec.errors_total(),
        error_kinds: rec.errors.clone(),
        unfinished: out.unfinished,
        elapsed_s: out.elapsed.as_secs_f64(),
        achieved_rate: if window > 0.0 {
            (completed as f64 / window * 10.0).round() / 10.0
        } else {
            0.0
        },
        bytes_received: rec.bytes,
        latency_us: rec.latency.summary(),
        service_us: rec.service.summary(),
        ttft_us: rec.ttft.summary(),
        gap_us: rec.gap.summary(),
        events,
    }
}

fn run(args: Args) -> Result<String, String> {
    let body = match &args.body {
        Some(p) => Some(std::fs::read(p).map_err(|e| format!("--body {}: {e}", p.display()))?),
        None => None,
    };
    let tpl = Arc::new(Template::new(&args, body)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let out = rt.block_on(async {
        match (args.mode, args.rate) {
            (Mode::Open, Some(rate)) => load::open(&args, tpl, rate).await,
            (Mode::Closed, _) => load::closed(&args, tpl).await,
            (Mode::Sequential, _) | (Mode::Open, None) => load::sequential(&args, tpl).await,
        }
    });
    let r = report(&args, out);
    serde_json::to_string_pretty(&r).map_err(|e| format!("writing the report: {e}"))
}

fn main() -> ExitCode {
    match args::parse(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            println!("{}", args::USAGE);
            ExitCode::SUCCESS
        }
        Ok(Command::Run(a)) => match run(*a) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("aigw-bench: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("aigw-bench: {e}\n\n{}", args::USAGE);
            ExitCode::from(2)
        }
    }
}
