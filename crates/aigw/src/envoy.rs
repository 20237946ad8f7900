//! Finding and running Envoy.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Finds the Envoy binary: `--envoy`, then `$ENVOY_BIN`, then the project's
/// venv (`.venv/bin/envoy` under the current directory), then `$PATH`.
pub fn find(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ENVOY_BIN").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(".venv/bin/envoy");
    if venv.is_file() {
        return Some(venv);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("envoy"))
        .find(|p| p.is_file())
}

/// Runs `envoy --mode validate` on a rendered file. `Ok` carries Envoy's last
/// output line; `Err` everything it printed.
pub fn validate(envoy: &Path, config: &Path) -> Result<String, String> {
    let out = Command::new(envoy)
        .args([
            "--mode",
            "validate",
            "--disable-hot-restart",
            "--log-level",
            "error",
            "-c",
        ])
        .arg(config)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", envoy.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text.lines().last().unwrap_or("OK").trim().to_string())
    } else {
        Err(text)
    }
}

/// Replaces this process with Envoy, so signals (Ctrl-C) reach Envoy directly
/// and its exit status is the command's. `extra` arguments go last; the
/// default log levels apply only when `extra` does not set them.
pub fn exec(envoy: &Path, config: &Path, extra: &[String]) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(envoy);
    cmd.arg("-c").arg(config).arg("--disable-hot-restart");
    cmd.args(default_args(extra));
    cmd.args(extra);
    cmd.exec()
}

/// Envoy refuses a flag given twice: defaults yield to the operator's flags.
fn default_args(extra: &[String]) -> Vec<&'static str> {
    let given = |flags: &[&str]| {
        extra.iter().any(|a| {
            flags
                .iter()
                .any(|f| a == f || a.starts_with(&format!("{f}=")))
        })
    };
    let mut args = Vec::new();
    if !given(&["--log-level", "-l"]) {
        args.extend(["--log-level", "info"]);
    }
    if !given(&["--component-log-level"]) {
        args.extend(["--component-log-level", "wasm:info"]);
    }
    if !given(&["--file-flush-interval-msec"]) {
        // The access log shows each request within a second, not Envoy's 10 s.
        args.extend(["--file-flush-interval-msec", "1000"]);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_flags_replace_the_defaults() {
        let args = |a: &[&str]| default_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            args(&[]),
            [
                "--log-level",
                "info",
                "--component-log-level",
                "wasm:info",
                "--file-flush-interval-msec",
                "1000"
            ]
        );
        assert_eq!(
            args(&["--component-log-level", "wasm:debug"]),
            ["--log-level", "info", "--file-flush-interval-msec", "1000"]
        );
        assert!(args(&[
            "-l",
            "debug",
            "--component-log-level=wasm:debug",
            "--file-flush-interval-msec",
            "5"
        ])
        .is_empty());
    }
}
