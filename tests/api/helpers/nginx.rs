//! A real nginx (Debian's package) on loopback, with a generated configuration: the README's
//! forward-auth example, pointing at a keygate and an upstream of the test.

use std::process::{Child, Command, Stdio};

pub struct Nginx {
    child: Child,
    pub address: String,
    dir: tempfile::TempDir,
}

/// The server block the README shows (`docs/nginx-forward-auth.conf`), with the test's ports.
pub fn forward_auth_config(port: u16, keygate: u16, app: u16, dir: &str) -> String {
    let server = include_str!("../../../docs/nginx-forward-auth.conf")
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{keygate}"))
        .replace("127.0.0.1:3000", &format!("127.0.0.1:{app}"));
    format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {dir}/nginx.pid;\n\
         error_log {dir}/error.log warn;\nevents {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {dir}/body;\n  \
         proxy_temp_path {dir}/proxy;\n  fastcgi_temp_path {dir}/fastcgi;\n  \
         uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n{server}\n}}\n"
    )
}

fn nginx_binary() -> String {
    for candidate in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if std::path::Path::new(candidate).exists() {
            return candidate.to_string();
        }
    }
    panic!(
        "nginx is not installed. The forward-auth tests run Debian's nginx: \
         apt-get install nginx (./scripts/install.sh does it; ./scripts/test.sh runs that)"
    );
}

impl Nginx {
    /// Starts nginx with `config(port, dir)` on `port` and waits until it listens.
    pub async fn start_on(port: u16, config: impl Fn(u16, &str) -> String) -> Self {
        let binary = nginx_binary();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(port, &dir.path().to_string_lossy())).unwrap();
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        let nginx = Nginx {
            child,
            address: format!("http://127.0.0.1:{port}"),
            dir,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return nginx;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(nginx.dir.path().join("error.log")).unwrap_or_default();
        panic!("nginx did not listen on {port}: {log}");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
