//! Command-line arguments.

use std::path::PathBuf;
use std::time::Duration;

use hyper::Uri;

pub const USAGE: &str = "\
usage: aigw-bench --url URL [options]

  --url URL            target, http://HOST:PORT/PATH (required)
  --mode MODE          open (default): requests on a fixed schedule at --rate, latency measured
                       from each request's intended start time (corrects coordinated omission);
                       closed: every connection sends back to back for --duration (capacity);
                       sequential: one request at a time on one connection, --samples of them
  --rate R             requests per second for open mode (required there)
  --duration SECS      how long to send, open and closed modes (default 5)
  --connections C      connections (and requests in flight at most) (default 16)
  --samples N          requests in sequential mode (default 1000)
  --body FILE          request body (POST); without it the request is a GET
  --method M           override the method
  -H, --header 'N: V'  request header, repeatable
  --timeout SECS       per-request timeout (default 10)
  --drain SECS         after --duration, how long to wait for queued and in-flight requests
                       before counting them as unfinished errors (default 5)
  --threads N          client runtime threads (default 1)

Prints one JSON object on stdout (see tools/bench/README.md).";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Open,
    Closed,
    Sequential,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Open => "open",
            Mode::Closed => "closed",
            Mode::Sequential => "sequential",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Args {
    pub url: Uri,
    pub host: String,
    pub port: u16,
    pub mode: Mode,
    pub rate: Option<f64>,
    pub duration: Duration,
    pub connections: usize,
    pub samples: u64,
    pub body: Option<PathBuf>,
    pub method: Option<String>,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub drain: Duration,
    pub threads: usize,
}

pub enum Command {
    Run(Box<Args>),
    Help,
}

fn secs(flag: &str, v: &str) -> Result<Duration, String> {
    let s: f64 = v
        .parse()
        .map_err(|_| format!("{flag}: {v:?} is not a number of seconds"))?;
    if !(s.is_finite() && s > 0.0) {
        return Err(format!(
            "{flag}: {v:?} must be a positive number of seconds"
        ));
    }
    Ok(Duration::from_secs_f64(s))
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(flag: &str, v: &str) -> Result<T, String> {
    match v.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err(format!("{flag}: {v:?} must be a positive number")),
    }
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut url: Option<String> = None;
    let mut mode = Mode::Open;
    let mut rate = None;
    let mut duration = Duration::from_secs(5);
    let mut connections = 16usize;
    let mut samples = 1000u64;
    let mut body = None;
    let mut method = None;
    let mut headers = Vec::new();
    let mut timeout = Duration::from_secs(10);
    let mut drain = Duration::from_secs(5);
    let mut threads = 1usize;

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--mode" => {
                let v = value()?;
                mode = match v.as_str() {
                    "open" => Mode::Open,
                    "closed" => Mode::Closed,
                    "sequential" => Mode::Sequential,
                    _ => return Err(format!("--mode: {v:?} is not open, closed or sequential")),
                };
            }
            "--rate" => {
                let v = value()?;
                let r: f64 = positive(&flag, &v)?;
                if !r.is_finite() {
                    return Err(format!("--rate: {v:?} must be finite"));
                }
                rate = Some(r);
            }
            "--duration" => duration = secs(&flag, &value()?)?,
            "--connections" => connections = positive(&flag, &value()?)?,
            "--samples" => samples = positive(&flag, &value()?)?,
            "--body" => body = Some(PathBuf::from(value()?)),
            "--method" => method = Some(value()?),
            "-H" | "--header" => {
                let v = value()?;
                let (n, val) = v
                    .split_once(':')
                    .ok_or_else(|| format!("{flag}: {v:?} is not 'name: value'"))?;
                headers.push((n.trim().to_owned(), val.trim().to_owned()));
            }
            "--timeout" => timeout = secs(&flag, &value()?)?,
            "--drain" => drain = secs(&flag, &value()?)?,
            "--threads" => threads = positive(&flag, &value()?)?,
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("--url: {url:?} is not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("--url: {url:?} must start with http:// (no TLS)"));
    }
    let host = uri
        .host()
        .ok_or_else(|| format!("--url: {url:?} has no host"))?
        .to_owned();
    let port = uri.port_u16().unwrap_or(80);
    if mode == Mode::Open && rate.is_none() {
        return Err("--rate is required in open mode".to_owned());
    }
    Ok(Command::Run(Box::new(Args {
        url: uri,
        host,
        port,
        mode,
        rate,
        duration,
        connections,
        samples,
        body,
        method,
        headers,
        timeout,
        drain,
        threads,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: &[&str]) -> Result<Args, String> {
        match parse(v.iter().map(|s| s.to_string()))? {
            Command::Run(a) => Ok(*a),
            Command::Help => Err("help".into()),
        }
    }

    #[test]
    fn parses_an_open_loop_run_with_headers() {
        let a = run(&[
            "--url",
            "http://127.0.0.1:8080/v1/chat/completions",
            "--rate=100",
            "-H",
            "x-mock-chunks: 64",
            "--duration",
            "1.5",
        ])
        .unwrap();
        assert_eq!(a.mode, Mode::Open);
        assert_eq!(a.port, 8080);
        assert_eq!(a.rate, Some(100.0));
        assert_eq!(a.duration, Duration::from_millis(1500));
        assert_eq!(a.headers, vec![("x-mock-chunks".into(), "64".into())]);
    }

    #[test]
    fn open_mode_needs_a_rate_and_urls_need_http() {
        assert!(run(&["--url", "http://a:1/"])
            .unwrap_err()
            .contains("--rate"));
        assert!(run(&["--url", "https://a/", "--rate", "1"])
            .unwrap_err()
            .contains("http://"));
        assert!(run(&["--url", "http://a/", "--mode", "sequential"]).is_ok());
        assert!(run(&["--url", "http://a/", "--rate", "0"]).is_err());
    }
}
