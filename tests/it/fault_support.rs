//! Faults on demand: a TCP proxy in front of Postgres that can cut every connection, and app
//! processes that can be killed. (A Redis server that dies and comes back: `redis_servers`.)

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::support::{TestApp, test_settings};

/// The app reaching Postgres through a proxy the test can cut, and the direct database URL
/// for the test to look past the proxy.
pub async fn app_behind_a_postgres_proxy() -> (TestApp, Proxy, String) {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let direct = test_settings();
    let through_proxy = direct
        .database_url
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    let direct_url = direct.database_url.clone();
    let app = TestApp::spawn_with(|s| {
        *s = boxoffice::config::Settings {
            database_url: through_proxy,
            ..direct
        }
    })
    .await;
    (app, proxy, direct_url)
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A TCP proxy to `target` that can be switched off: while off it cuts every open connection
/// and refuses new ones, which to the app looks like the server going away.
pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(target: &'static str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0u64);
        let (up2, cut2) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused at once
                }
                let mut cut_rx = cut2.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Proxy { port, up, cut }
    }

    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    pub fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// The `boxoffice` binary serving on a port of its own. Killed (SIGKILL) when dropped.
pub struct AppProcess {
    pub base: String,
    child: Child,
}

impl AppProcess {
    pub async fn start(database_url: &str, redis_url: &str) -> AppProcess {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_boxoffice"))
            .env("BOXOFFICE_ADDR", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database_url)
            .env("REDIS_URL", redis_url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the boxoffice binary");
        // Owned at once, so that a failed start below still kills it on drop.
        let app = AppProcess {
            base: format!("http://127.0.0.1:{port}"),
            child,
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = client.get(format!("{}/readyz", app.base)).send().await
                && r.status().is_success()
            {
                return app;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("boxoffice on port {port} did not become ready");
    }

    /// Kills the process without warning, as a crashed machine would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
