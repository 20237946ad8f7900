//! `aigw`: turns a gateway file into an Envoy bootstrap, checks it, runs it.

mod duration;
mod envoy;
mod gateway;
mod interpolate;
mod key;
mod render;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gateway::Gateway;
use render::RenderOptions;

const USAGE: &str = "\
aigw: an AI gateway of proxy-wasm filters in a stock Envoy

Usage:
  aigw render   CONFIG [--wasm-dir DIR] [-o FILE]   print the Envoy bootstrap (YAML)
  aigw validate CONFIG [--wasm-dir DIR] [--envoy PATH] [--no-envoy]
                                                   report every config error; then
                                                   run `envoy --mode validate` when
                                                   Envoy is installed
  aigw run      CONFIG [--wasm-dir DIR] [--envoy PATH] [-- ENVOY-ARGS...]
                                                   render and run Envoy (Ctrl-C stops)
  aigw key create [--name NAME]                    make a consumer key and its hash
  aigw key hash [KEY]                              print a key's hash (KEY from stdin
                                                   when not given)
  aigw version

CONFIG is a gateway YAML file (see README.md, \"The gateway file\").
--wasm-dir  where aigw_router.wasm and aigw_provider.wasm are, as Envoy sees
            them (default: $AIGW_WASM_DIR, else target/wasm32-wasip1/release)
--envoy     the Envoy binary (default: $ENVOY_BIN, .venv/bin/envoy, $PATH)
";

struct Args {
    command: String,
    config: Option<PathBuf>,
    wasm_dir: Option<PathBuf>,
    envoy: Option<PathBuf>,
    output: Option<PathBuf>,
    no_envoy: bool,
    extra: Vec<String>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let command = it.next().ok_or("missing command")?;
    let mut args = Args {
        command,
        config: None,
        wasm_dir: None,
        envoy: None,
        output: None,
        no_envoy: false,
        extra: vec![],
    };
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().ok_or(format!("{flag} needs a value"));
        match a.as_str() {
            "--wasm-dir" => args.wasm_dir = Some(value("--wasm-dir")?.into()),
            "--envoy" => args.envoy = Some(value("--envoy")?.into()),
            "-o" | "--output" => args.output = Some(value("-o")?.into()),
            "--no-envoy" => args.no_envoy = true,
            "--" => {
                args.extra = it.by_ref().collect();
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s if args.config.is_none() => args.config = Some(s.into()),
            s => return Err(format!("unexpected argument {s}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("key") {
        return match key::run(&raw[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("aigw: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let args = match parse_args(raw.into_iter()) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("aigw: {e}\n");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match args.command.as_str() {
        "render" => cmd_render(&args),
        "validate" => cmd_validate(&args),
        "run" => cmd_run(&args),
        "version" | "--version" => {
            println!("aigw {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn load(args: &Args) -> Result<(Gateway, String), String> {
    let path = args
        .config
        .as_ref()
        .ok_or("missing CONFIG (a gateway YAML file)")?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let source = path.display().to_string();
    match gateway::load(&text, &env_lookup) {
        Ok(g) => Ok((g, source)),
        Err(errs) => {
            let mut msg = format!("{source}: {} error(s):", errs.0.len());
            for e in &errs.0 {
                msg.push_str(&format!("\n  - {e}"));
            }
            Err(msg)
        }
    }
}

fn wasm_dir(args: &Args) -> PathBuf {
    let dir = args
        .wasm_dir
        .clone()
        .or_else(|| {
            std::env::var_os("AIGW_WASM_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("target/wasm32-wasip1/release"));
    if dir.is_absolute() {
        dir
    } else {
        std::env::current_dir().map(|c| c.join(&dir)).unwrap_or(dir)
    }
}

fn render_yaml(args: &Args) -> Result<(Gateway, String, PathBuf), String> {
    let (g, source) = load(args)?;
    let dir = wasm_dir(args);
    let bootstrap = render::bootstrap(
        &g,
        &RenderOptions {
            wasm_dir: dir.clone(),
        },
    );
    let yaml = render::to_yaml(&bootstrap, &source)?;
    Ok((g, yaml, dir))
}

fn print_warnings(g: &Gateway) {
    for w in &g.warnings {
        eprintln!("aigw: warning: {w}");
    }
}

fn cmd_render(args: &Args) -> Result<(), String> {
    let (g, yaml, _) = render_yaml(args)?;
    print_warnings(&g);
    match &args.output {
        Some(path) => write_private(path, &yaml),
        None => {
            print!("{yaml}");
            Ok(())
        }
    }
}

fn cmd_validate(args: &Args) -> Result<(), String> {
    let (g, yaml, dir) = render_yaml(args)?;
    print_warnings(&g);
    println!(
        "{}: OK ({} provider(s), {} model entr(ies), {} route(s))",
        args.config
            .as_deref()
            .map(Path::display)
            .map(|d| d.to_string())
            .unwrap_or_default(),
        g.providers.len(),
        g.file.models.len(),
        g.routes.len()
    );
    if args.no_envoy {
        return Ok(());
    }
    let Some(envoy) = envoy::find(args.envoy.as_deref()) else {
        println!(
            "envoy: not found; skipped `envoy --mode validate` (install it, or pass --envoy PATH)"
        );
        return Ok(());
    };
    for wasm in [render::ROUTER_WASM, render::PROVIDER_WASM] {
        if !dir.join(wasm).is_file() {
            return Err(format!(
                "{} not found: build the filters first (make build), or pass --wasm-dir",
                dir.join(wasm).display()
            ));
        }
    }
    let file = temp_config_path("validate")?;
    write_private(&file, &yaml)?;
    let result = envoy::validate(&envoy, &file);
    let _ = std::fs::remove_file(&file);
    if let Some(dir) = file.parent() {
        let _ = std::fs::remove_dir(dir);
    }
    match result {
        Ok(last) => {
            println!(
                "envoy --mode validate: {}",
                last.rsplit(' ').next().unwrap_or("OK")
            );
            Ok(())
        }
        Err(out) => Err(format!(
            "envoy --mode validate rejected the rendered config:\n{out}"
        )),
    }
}

fn cmd_run(args: &Args) -> Result<(), String> {
    let (g, yaml, dir) = render_yaml(args)?;
    print_warnings(&g);
    for wasm in [render::ROUTER_WASM, render::PROVIDER_WASM] {
        if !dir.join(wasm).is_file() {
            return Err(format!(
                "{} not found: build the filters first (make build), or pass --wasm-dir",
                dir.join(wasm).display()
            ));
        }
    }
    let envoy = envoy::find(args.envoy.as_deref())
        .ok_or("envoy not found: install it (make venv) or pass --envoy PATH")?;
    let file = run_config_path(args, &g)?;
    write_private(&file, &yaml)?;
    eprintln!(
        "aigw: gateway on http://{}:{}/v1  (admin http://{}:{})",
        g.listen.host, g.listen.port, g.admin.host, g.admin.port
    );
    let models: Vec<String> = g
        .router
        .models
        .iter()
        .filter_map(|m| m.name.clone().or_else(|| m.pattern.clone()))
        .collect();
    eprintln!("aigw: models: {}", models.join(", "));
    eprintln!("aigw: envoy config: {}", file.display());
    let err = envoy::exec(&envoy, &file, &args.extra);
    Err(format!("cannot start {}: {err}", envoy.display()))
}

/// A file only the current user can read: the rendered config may hold inline keys.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Where `aigw run` writes the rendered config. Envoy replaces this process,
/// so the file outlives it: the name is stable for a config file and listen
/// address, so running again overwrites it instead of leaving another copy.
fn run_config_path(args: &Args, g: &Gateway) -> Result<PathBuf, String> {
    use sha2::{Digest, Sha256};
    let config = args.config.as_deref().unwrap_or(Path::new(""));
    let config = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf());
    let digest = Sha256::digest(format!(
        "{}|{}:{}",
        config.display(),
        g.listen.host,
        g.listen.port
    ));
    let dir = std::env::temp_dir().join("aigw-run");
    create_private_dir(&dir)?;
    Ok(dir.join(format!("envoy-{}.yaml", &hex::encode(digest)[..16])))
}

fn create_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// A fresh private directory for a file removed after use.
fn temp_config_path(kind: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("aigw-{}", std::process::id()));
    create_private_dir(&dir)?;
    Ok(dir.join(format!("envoy-{kind}.yaml")))
}
