//! A TCP proxy in front of the real Keycloak that a test can cut and restore: the fault injector
//! for "Keycloak is down" (a real server cannot be stopped per test without breaking the others).
//! Keycloak in dev mode derives its issuer from the Host header, so through the proxy it is a
//! complete realm at the proxy's address.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct FaultProxy {
    pub addr: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
        let addr = listener.local_addr().expect("proxy addr");
        let mut p = FaultProxy {
            addr,
            tasks: Arc::new(Mutex::new(vec![])),
            accept: None,
        };
        p.accept = Some(p.spawn_accept(listener));
        p
    }

    fn spawn_accept(&self, listener: TcpListener) -> JoinHandle<()> {
        let tasks = self.tasks.clone();
        let upstream: SocketAddr = super::env::keycloak_base()
            .trim_start_matches("http://")
            .parse()
            .expect("Keycloak host:port");
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let t = tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                tasks.lock().unwrap().push(t);
            }
        })
    }

    /// Keycloak "goes down": the port refuses connections and open ones are cut.
    pub fn cut(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Keycloak "comes back" on the same address.
    pub async fn restore(&mut self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("proxy rebind: {e}"),
            }
        };
        self.accept = Some(self.spawn_accept(listener));
    }

    pub fn issuer(&self) -> String {
        let realm = super::env::issuer();
        let path = realm
            .splitn(4, '/')
            .nth(3)
            .unwrap_or("realms/keygate")
            .to_string();
        format!("http://{}/{}", self.addr, path)
    }
}
