//! keygate as its own process (the `keygate` binary cargo built for these tests), for what must be
//! measured on the process alone, such as its memory.

use std::process::{Child, Command, Stdio};

use super::env::{env_or, issuer};

pub struct KeygateProcess {
    child: Child,
    pub address: String,
    _dir: tempfile::TempDir,
}

impl KeygateProcess {
    /// Starts the binary on a free port with a fresh SQLite file, the demo realm and `extra`,
    /// and waits until `/healthz` answers.
    pub async fn start(extra: &[(&str, String)]) -> Self {
        super::env::require_keycloak().await;
        let dir = tempfile::tempdir().unwrap();
        let port = super::upstream::closed_port();
        let address = format!("http://127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_keygate"));
        command
            .env("KEYGATE_BIND", format!("127.0.0.1:{port}"))
            .env("KEYGATE_DATABASE_URL", dir.path().join("keygate.db"))
            .env("KEYGATE_ISSUER_URL", issuer())
            .env("KEYGATE_CLIENT_ID", env_or("KEYGATE_CLIENT_ID", "keygate"))
            .env(
                "KEYGATE_CLIENT_SECRET",
                env_or("KEYGATE_CLIENT_SECRET", "keygate-dev-secret"),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("stderr.log")).expect("log file"),
            ));
        for (k, v) in extra {
            command.env(k, v);
        }
        let child = command.spawn().expect("start the keygate binary");
        let process = KeygateProcess {
            child,
            address,
            _dir: dir,
        };
        for _ in 0..100 {
            let up = reqwest::get(format!("{}/healthz", process.address)).await;
            if up.is_ok_and(|r| r.status() == 200) {
                return process;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the keygate binary did not answer /healthz within 10 s");
    }

    /// What it wrote to stderr so far (its log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("stderr.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `SIG<name>` (e.g. `TERM`).
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{name} failed");
    }

    /// Its exit code once it exits within `limit` (None: still running, or killed by a signal).
    pub async fn wait_exit(&mut self, limit: std::time::Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        None
    }
}

impl Drop for KeygateProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
