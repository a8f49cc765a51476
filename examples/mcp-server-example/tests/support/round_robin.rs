//! A round-robin TCP proxy: the load balancer without sticky sessions that the two-instance
//! tests put in front of their servers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};

use super::{Launch, Server};

/// A TCP proxy on an ephemeral port that sends each accepted connection to the next backend in
/// turn (skipping one that refuses the connection), as a load balancer without sticky sessions
/// does. It stops when dropped.
pub(crate) struct RoundRobin {
    pub(crate) port: u16,
    backends: Arc<Mutex<Vec<u16>>>,
    /// Connections handed to each backend port, in order of acceptance.
    served: Arc<Mutex<Vec<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RoundRobin {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let backends: Arc<Mutex<Vec<u16>>> = Arc::default();
        let served: Arc<Mutex<Vec<u16>>> = Arc::default();
        let next = Arc::new(AtomicUsize::new(0));
        let (list, log) = (backends.clone(), served.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let _ = inbound.set_nodelay(true);
                let ports = list.lock().expect("backends").clone();
                let start = next.fetch_add(1, Ordering::Relaxed);
                let log = log.clone();
                tokio::spawn(async move {
                    // Each backend at most once, from the next one on.
                    for i in 0..ports.len() {
                        let port = ports[(start + i) % ports.len()];
                        let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await else { continue };
                        let _ = outbound.set_nodelay(true);
                        log.lock().expect("served").push(port);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                });
            }
        });
        Self { port, backends, served, task }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn route_to(&self, servers: &[&Server]) {
        *self.backends.lock().expect("backends") = servers.iter().map(|s| s.port).collect();
    }

    /// How many connections went to `server` so far.
    pub(crate) fn served(&self, server: &Server) -> usize {
        self.served.lock().expect("served").iter().filter(|&&p| p == server.port).count()
    }

    /// A server of the deployment behind this proxy (its public URL) on `database_url`.
    pub(crate) fn launch(&self, database_url: &str) -> Launch {
        Launch { public_url: self.url(), env: Vec::new() }.env("DATABASE_URL", database_url)
    }
}
