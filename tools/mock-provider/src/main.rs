//! `mock-provider`: a fast, deterministic fake LLM provider (OpenAI, Azure OpenAI, Anthropic
//! Messages, Gemini) for the demo, the integration tests and the benchmark. See README.md.

mod admin;
mod anthropic;
mod gemini;
mod json;
mod openai;
mod program;
mod record;
mod reply;
mod service;

#[cfg(test)]
mod server_tests;

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::service::State;

const USAGE: &str = "\
usage: mock-provider [--listen ADDR] [--name NAME] [--port-file PATH]

  --listen ADDR      address to listen on (default 127.0.0.1:0, a free port)
  --name NAME        name sent in x-mock-name and the replies (default mock)
  --port-file PATH   after binding, write the port number to PATH (atomically)

Prints `mock-provider NAME listening on ADDR:PORT` once listening; stops on SIGTERM/SIGINT.";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Args {
    listen: SocketAddr,
    name: String,
    port_file: Option<PathBuf>,
}

enum Command {
    Run(Args),
    Help,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut parsed = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        name: "mock".to_owned(),
        port_file: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                parsed.listen = v.parse().map_err(|_| {
                    format!("--listen: {v:?} is not an address like 127.0.0.1:8000")
                })?;
            }
            "--name" => {
                let v = value()?;
                if v.is_empty() {
                    return Err("--name must not be empty".to_owned());
                }
                parsed.name = v;
            }
            "--port-file" => parsed.port_file = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(Command::Run(parsed))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("mock-provider: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mock-provider: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mock-provider: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let state = Arc::new(State::new(&args.name)?);
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    if let Some(path) = &args.port_file {
        write_port_file(path, addr.port())
            .map_err(|e| format!("cannot write --port-file {}: {e}", path.display()))?;
    }
    {
        let mut out = std::io::stdout().lock();
        // Nobody reading stdout is not a reason to stop serving.
        let _ = writeln!(out, "mock-provider {} listening on {addr}", args.name);
        let _ = out.flush();
    }
    serve(listener, state, shutdown_signal()).await;
    Ok(())
}

/// Write the port to a temporary file next to `path`, then rename it into place, so a
/// reader never sees a partial file.
fn write_port_file(path: &Path, port: u16) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, port.to_string())?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Accept connections until `shutdown` completes. Each connection speaks HTTP/1.1 or h2c.
pub async fn serve(listener: TcpListener, state: Arc<State>, shutdown: impl Future<Output = ()>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    eprintln!("mock-provider: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Stream events must leave as soon as they are written.
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { service::handle(&state, req).await }
            });
            // Connection errors (client gone, cut-after aborts) are expected here.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    () = ctrl_c => {}
                }
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> Result<Args, String> {
        match parse_args(args.iter().map(|s| (*s).to_owned()))? {
            Command::Run(args) => Ok(args),
            Command::Help => Err("help".to_owned()),
        }
    }

    #[test]
    fn defaults_listen_on_a_free_local_port_as_mock() {
        let args = run_args(&[]).unwrap();
        assert_eq!(args.listen, SocketAddr::from(([127, 0, 0, 1], 0)));
        assert_eq!(args.name, "mock");
        assert_eq!(args.port_file, None);
    }

    #[test]
    fn flags_take_separate_or_inline_values() {
        let args = run_args(&[
            "--listen",
            "0.0.0.0:9000",
            "--name=up1",
            "--port-file",
            "/tmp/p",
        ])
        .unwrap();
        assert_eq!(args.listen, SocketAddr::from(([0, 0, 0, 0], 9000)));
        assert_eq!(args.name, "up1");
        assert_eq!(args.port_file, Some(PathBuf::from("/tmp/p")));
    }

    #[test]
    fn bad_arguments_are_reported() {
        assert!(run_args(&["--listen"])
            .unwrap_err()
            .contains("needs a value"));
        assert!(run_args(&["--listen", "nope"]).is_err());
        assert!(run_args(&["--bogus"]).is_err());
        assert!(run_args(&["--name", ""]).is_err());
        assert_eq!(run_args(&["--help"]).unwrap_err(), "help");
    }

    #[test]
    fn port_file_is_written_whole() {
        let dir = std::env::temp_dir().join(format!("mock-provider-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("port");
        write_port_file(&path, 8123).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "8123");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
