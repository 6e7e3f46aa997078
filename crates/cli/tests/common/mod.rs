//! Helpers shared by the end-to-end tests: the binary, a `shoplens serve` process on a free
//! port, an HTTP agent, and commands that print JSON.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "each test file uses its own share of the helpers, which fail loudly"
)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub(crate) const KEY: &str = "test-write-key";
pub(crate) const TOKEN: &str = "test-read-token-0123456789abcdef";

pub(crate) fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shoplens"))
}

/// A `shoplens serve` process on a free port.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) url: String,
    pub(crate) log: PathBuf,
}

impl Server {
    pub(crate) fn start(ws: &Path, extra: &[&str]) -> Server {
        let mut child = bin()
            .args([
                "--workspace",
                &ws.display().to_string(),
                "serve",
                "--addr",
                "127.0.0.1:0",
            ])
            .args(["--write-key", KEY, "--read-token", TOKEN])
            .args(extra)
            .env_remove("SHOPLENS_WRITE_KEYS")
            .stdout(Stdio::piped())
            // The server's JSON log, beside the workspace, for a failing test to show.
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(ws.with_extension("server.log"))
                    .unwrap(),
            ))
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server {
            child,
            url,
            log: ws.with_extension("server.log"),
        }
    }

    /// SIGTERM, and the exit status.
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        if !status.success() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let mut err = std::io::stderr();
            let _ = writeln!(err, "server log:\n{log}");
        }
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A no-op after stop(): the process has exited and been waited for.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

pub(crate) fn basic(key: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

/// Runs a command that must succeed and print JSON; the JSON.
pub(crate) fn json_of(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(out.stdout.trim_ascii()).unwrap()
}

/// The demo shop at scale 0.02 in `dir/ws` (about a thousand customers: seconds to build).
pub(crate) fn small_demo(dir: &Path) -> PathBuf {
    let ws = dir.join("ws");
    let o = bin()
        .args([
            "--workspace",
            &ws.display().to_string(),
            "-q",
            "demo",
            "--scale",
            "0.02",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ws
}
