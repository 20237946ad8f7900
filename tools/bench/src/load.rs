//! The three ways of sending: open loop on a schedule, closed loop, one at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};

use crate::args::Args;
use crate::stats::{EventCounter, Recorder};

/// What every request carries; built once.
pub struct Template {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl Template {
    pub fn new(args: &Args, body: Option<Vec<u8>>) -> Result<Self, String> {
        let method = match (&args.method, &body) {
            (Some(m), _) => Method::from_bytes(m.as_bytes())
                .map_err(|_| format!("--method: {m:?} is not an HTTP method"))?,
            (None, Some(_)) => Method::POST,
            (None, None) => Method::GET,
        };
        let path = args
            .url
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let authority = args
            .url
            .authority()
            .map_or_else(|| args.host.clone(), |a| a.as_str().to_owned());
        let mut headers = vec![(
            HOST,
            HeaderValue::from_str(&authority).map_err(|_| format!("bad host {authority:?}"))?,
        )];
        let mut has_content_type = false;
        for (n, v) in &args.headers {
            let name = HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| format!("--header: {n:?} is not a header name"))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| format!("--header: {v:?} is not a header value"))?;
            has_content_type |= name == CONTENT_TYPE;
            headers.push((name, value));
        }
        if body.is_some() && !has_content_type {
            headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
        }
        Ok(Template {
            method,
            path,
            headers,
            body: Bytes::from(body.unwrap_or_default()),
        })
    }

    fn request(&self) -> Result<Request<Full<Bytes>>, String> {
        let mut b = Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str());
        for (n, v) in &self.headers {
            b = b.header(n, v);
        }
        b.body(Full::new(self.body.clone()))
            .map_err(|e| format!("building the request: {e}"))
    }
}

/// One HTTP/1.1 connection, reopened after a failure.
struct Conn {
    addr: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(args: &Args) -> Self {
        Conn {
            addr: format!("{}:{}", args.host, args.port),
            sender: None,
        }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, &'static str> {
        if let Some(s) = self.sender.as_ref() {
            if s.is_closed() {
                self.sender = None;
            }
        }
        let s = match self.sender.take() {
            Some(s) => s,
            None => {
                let stream = TcpStream::connect(&self.addr)
                    .await
                    .map_err(|_| "connect")?;
                stream.set_nodelay(true).map_err(|_| "connect")?;
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|_| "connect")?;
                tokio::spawn(async move {
                    // The connection ends when the sender is dropped or the peer closes it;
                    // the request that sees it fails and is counted there.
                    let _ = conn.await;
                });
                sender
            }
        };
        let s = self.sender.insert(s);
        s.ready().await.map_err(|_| "connection")?;
        Ok(s)
    }
}

/// Sends one request and reads its whole response, recording into `rec`. `start` is the
/// moment latency is measured from; `window_end` the end of the sending window.
async fn one(
    conn: &mut Conn,
    tpl: &Template,
    start: Instant,
    timeout: Duration,
    window_end: Option<Instant>,
    rec: &mut Recorder,
) {
    match tokio::time::timeout(timeout, exchange(conn, tpl, start, rec)).await {
        Ok(Ok(())) => {
            let done = Instant::now();
            rec.latency.record(done.saturating_duration_since(start));
            rec.ok += 1;
            if window_end.is_none_or(|end| done <= end) {
                rec.ok_in_window += 1;
            }
        }
        Ok(Err(kind)) => {
            conn.sender = None;
            rec.error(kind);
        }
        Err(_) => {
            conn.sender = None;
            rec.error("timeout");
        }
    }
}

async fn exchange(
    conn: &mut Conn,
    tpl: &Template,
    start: Instant,
    rec: &mut Recorder,
) -> Result<(), String> {
    let req = tpl.request()?;
    let sender = conn.sender().await.map_err(str::to_owned)?;
    let sent = Instant::now();
    let resp = sender
        .send_request(req)
        .await
        .map_err(|_| "connection".to_owned())?;
    let status = resp.status();
    let sse = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let mut body = resp.into_body();
    let mut counter = EventCounter::default();
    let mut events = 0u64;
    let mut last_event: Option<Instant> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| "body".to_owned())?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let now = Instant::now();
        rec.bytes += data.len() as u64;
        if !sse {
            continue;
        }
        let n = counter.feed(&data);
        for i in 0..n {
            match last_event {
                None => rec.ttft.record(now.saturating_duration_since(start)),
                Some(prev) => rec.gap.record(if i == 0 {
                    now.saturating_duration_since(prev)
                } else {
                    Duration::ZERO
                }),
            }
            last_event = Some(now);
        }
        events += n;
    }
    rec.service.record(sent.elapsed());
    if sse {
        rec.events(events);
    }
    if !status.is_success() {
        return Err(format!("status_{}", status.as_u16()));
    }
    Ok(())
}

/// What a run did, for the report.
pub struct Outcome {
    pub rec: Recorder,
    /// Requests scheduled (open), or sent (others).
    pub requests: u64,
    /// Scheduled but never finished before the drain deadline (open mode).
    pub unfinished: u64,
    pub elapsed: Duration,
}

/// Open loop: a pacer thread puts each request's intended start time in a queue on a fixed
/// schedule; a free connection takes the next one, waits for its time if it is early, and
/// measures latency from the intended time, so time spent queued behind a slow server counts.
pub async fn open(args: &Args, tpl: Arc<Template>, rate: f64) -> Outcome {
    let (tx, rx) = mpsc::channel::<Instant>(65_536);
    let rx = Arc::new(Mutex::new(rx));
    let t0 = Instant::now() + Duration::from_millis(20);
    let window_end = t0 + args.duration;
    let total = (rate * args.duration.as_secs_f64()).round() as u64;
    let interval = 1.0 / rate;

    let pacer = std::thread::spawn(move || {
        for k in 0..total {
            let intended = t0 + Duration::from_secs_f64(k as f64 * interval);
            let now = Instant::now();
            if intended > now {
                std::thread::sleep(intended - now);
            }
            if tx.blocking_send(intended).is_err() {
                break;
            }
        }
    });

    // Past this, queued and in-flight requests are given up and counted as unfinished.
    let deadline = window_end + args.drain;
    let mut workers = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let rx = rx.clone();
        let tpl = tpl.clone();
        let args = args.clone();
        workers.push(tokio::spawn(async move {
            let mut conn = Conn::new(&args);
            let mut rec = Recorder::new();
            loop {
                let next = tokio::time::timeout_at(deadline.into(), async {
                    rx.lock().await.recv().await
                })
                .await;
                let Ok(Some(intended)) = next else { break };
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                one(
                    &mut conn,
                    &tpl,
                    intended,
                    args.timeout.min(left),
                    Some(window_end),
                    &mut rec,
                )
                .await;
            }
            rec
        }));
    }

    let mut rec = gather(workers).await;
    let elapsed = t0.elapsed();
    // Stop the pacer if it is still waiting on a full queue, then count what never finished.
    rx.lock().await.close();
    let _ = tokio::task::spawn_blocking(move || pacer.join()).await;
    let finished = rec.ok + rec.errors_total();
    let unfinished = total.saturating_sub(finished);
    if unfinished > 0 {
        rec.errors.insert("unfinished".to_owned(), unfinished);
    }
    Outcome {
        rec,
        requests: total,
        unfinished,
        elapsed,
    }
}

/// The workers' records merged into one (a worker that panicked counts as an error).
async fn gather(workers: Vec<tokio::task::JoinHandle<Recorder>>) -> Recorder {
    let mut rec = Recorder::new();
    for w in workers {
        match w.await {
            Ok(r) => rec.merge(r),
            Err(_) => rec.error("worker"),
        }
    }
    rec
}

/// Closed loop: every connection sends its next request as soon as the last one ended.
pub async fn closed(args: &Args, tpl: Arc<Template>) -> Outcome {
    let t0 = Instant::now();
    let end = t0 + args.duration;
    let mut workers = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let tpl = tpl.clone();
        let args = args.clone();
        workers.push(tokio::spawn(async move {
            let mut conn = Conn::new(&args);
            let mut rec = Recorder::new();
            while Instant::now() < end {
                one(
                    &mut conn,
                    &tpl,
                    Instant::now(),
                    args.timeout,
                    Some(end),
                    &mut rec,
                )
                .await;
            }
            rec
        }));
    }
    let rec = gather(workers).await;
    let requests = rec.ok + rec.errors_total();
    Outcome {
        rec,
        requests,
        unfinished: 0,
        elapsed: t0.elapsed(),
    }
}

/// One request at a time on one connection.
pub async fn sequential(args: &Args, tpl: Arc<Template>) -> Outcome {
    let t0 = Instant::now();
    let mut conn = Conn::new(args);
    let mut rec = Recorder::new();
    for _ in 0..args.samples {
        one(
            &mut conn,
            &tpl,
            Instant::now(),
            args.timeout,
            None,
            &mut rec,
        )
        .await;
    }
    Outcome {
        rec,
        requests: args.samples,
        unfinished: 0,
        elapsed: t0.elapsed(),
    }
}
