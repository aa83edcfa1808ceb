//! A real SMTP server for the mail tests: `tests/smtp_sink.py` (aiosmtpd from PyPI, installed
//! into `target/smtp-venv` on first use) on a free loopback port, stopped by its PID when the
//! test drops it. What arrives is read back from the JSON files it writes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's Python, with aiosmtpd installed once per machine.
fn python() -> PathBuf {
    venv_python("smtp-venv", "aiosmtpd")
}

/// The Python of `target/<venv>`, with the PyPI package `package` (imported under the same
/// name) installed into it on first use.
pub fn venv_python(venv: &str, package: &str) -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap();
    let venv = root().join("target").join(venv);
    let python = venv.join("bin/python");
    let ready = || {
        Command::new(&python)
            .args(["-c", &format!("import {package}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready() {
        let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).status();
        assert!(made.is_ok_and(|s| s.success()), "python3 -m venv {}", venv.display());
        let installed = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", package])
            .status();
        assert!(installed.is_ok_and(|s| s.success()), "pip install {package}");
    }
    python
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        Self::start_on(free_port())
    }

    /// The server on `port` (a test that first had nothing listening there).
    pub fn start_on(port: u16) -> SmtpSink {
        let dir = root()
            .join("target/smtp-sink")
            .join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(python())
            .arg(root().join("tests/smtp_sink.py"))
            .arg(port.to_string())
            .arg(&dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the SMTP sink starts");
        // It prints "ready" once it listens.
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        SmtpSink { child, port, dir }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far, in order of arrival.
    pub fn received(&self) -> Vec<Value> {
        (1..)
            .map(|n| self.dir.join(format!("{n}.json")))
            .take_while(|p| p.exists())
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits up to `limit` for `count` messages.
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= count || start.elapsed() > limit {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The bytes of an attachment the sink saved.
pub fn attachment(part: &Value) -> Vec<u8> {
    std::fs::read(Path::new(part["saved"].as_str().unwrap())).unwrap()
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
