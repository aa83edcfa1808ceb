//! Redis servers of a test's own, on free loopback ports, stopped when the guard drops (a
//! panicking test included): a plain server (with nothing on disk, or with the files a test
//! asks for), a three-primary cluster, and Sentinel. The machine's shared Redis is never
//! restarted or flushed.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `count` ports from `base` up, each free along with its cluster bus port (+10000).
fn free_ports(count: u16) -> u16 {
    for _ in 0..200 {
        let base = rand::random_range(20000..29000u16);
        let all_free = (base..base + count)
            .flat_map(|p| [p, p + 10000])
            .all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no free loopback ports for a test Redis");
}

fn require_redis_server() {
    let found = Command::new("redis-server").arg("--version").output().is_ok();
    assert!(
        found,
        "redis-server is not installed; these tests start Redis servers of their own \
         (apt-get install redis-server)"
    );
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bo-{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A three-primary Redis Cluster started by `scripts/redis-cluster`.
pub struct Cluster {
    dir: PathBuf,
    pub first_port: u16,
    /// The nodes as a `REDIS_URL` list.
    pub url: String,
}

impl Cluster {
    pub fn start() -> Cluster {
        require_redis_server();
        let dir = temp_dir("cluster");
        let first_port = free_ports(3);
        let out = Command::new(script())
            .args(["start", dir.to_str().unwrap(), &first_port.to_string()])
            .output()
            .expect("scripts/redis-cluster runs");
        // The guard exists before the check, so a half-started cluster is stopped too.
        let cluster = Cluster {
            dir,
            first_port,
            url: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        };
        assert!(
            out.status.success(),
            "scripts/redis-cluster start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    pub fn ports(&self) -> [u16; 3] {
        [self.first_port, self.first_port + 1, self.first_port + 2]
    }

    /// Restarts one node as after a crash: empty, owning the same slots.
    pub fn restart(&self, port: u16) {
        let out = Command::new(script())
            .args(["restart", self.dir.to_str().unwrap(), &port.to_string()])
            .output()
            .expect("scripts/redis-cluster runs");
        assert!(
            out.status.success(),
            "scripts/redis-cluster restart failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["stop", self.dir.to_str().unwrap()])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/redis-cluster")
}

/// One plain Redis server that a test may stop or kill to see how the app copes.
pub struct Server {
    dir: PathBuf,
    pub port: u16,
    pid: Option<u32>,
    /// Configuration beyond "nothing on disk", given at every start.
    config: Vec<String>,
}

impl Server {
    /// The file name of the Unix socket of a server of `start_with_socket`, in its directory.
    const SOCKET: &str = "redis.sock";

    /// A server that keeps nothing on disk.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// A server with `config` on top of "nothing on disk" (later arguments win), for example
    /// `["--appendonly", "yes"]` or `["--replicaof", "127.0.0.1", "7000"]`.
    pub fn start_with(config: &[&str]) -> Server {
        Server::start_in(temp_dir("redis"), config)
    }

    fn start_in(dir: PathBuf, config: &[&str]) -> Server {
        require_redis_server();
        let mut server = Server {
            dir,
            port: free_ports(1),
            pid: None,
            config: config.iter().map(|a| a.to_string()).collect(),
        };
        server.launch();
        server
    }

    /// Starts the server on its port from the files in its directory (none: empty), and waits
    /// until it answers (a server still loading its files answers LOADING, not PONG).
    fn launch(&mut self) {
        let port = self.port;
        let pidfile = self.dir.join("redis.pid");
        let _ = std::fs::remove_file(&pidfile);
        let status = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--daemonize", "yes"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", self.dir.to_str().unwrap()])
            .args(["--pidfile", pidfile.to_str().unwrap()])
            .args(["--logfile", self.dir.join("redis.log").to_str().unwrap()])
            .args(&self.config)
            .status()
            .expect("redis-server runs");
        assert!(status.success(), "redis-server did not start on port {port}");
        let answered = wait_for_daemon(&pidfile, &mut self.pid, || redis_cli(port, &["ping"]) == "PONG");
        assert!(answered, "redis-server on port {port} did not answer");
    }

    /// A restart that loses everything: stopped, then started empty on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir_all(&self.dir).unwrap();
        self.launch();
    }

    /// Kills the server with SIGKILL, as a crash would: no shutdown, no last write.
    pub fn kill(&mut self) {
        let Some(pid) = self.pid.take() else { return };
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        for _ in 0..50 {
            if redis_cli(self.port, &["ping"]) != "PONG" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("redis-server on port {} survived SIGKILL", self.port);
    }

    /// Starts the server again on its port from whatever its files hold.
    pub fn start_again(&mut self) {
        assert!(self.pid.is_none(), "the server on port {} is still running", self.port);
        self.launch();
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A server that also listens on a Unix socket in its directory (see `unix_url`).
    pub fn start_with_socket() -> Server {
        let dir = temp_dir("redis");
        let socket = dir.join(Self::SOCKET);
        Server::start_in(
            dir,
            &["--unixsocket", socket.to_str().unwrap(), "--unixsocketperm", "700"],
        )
    }

    /// The URL of its Unix socket (a server of `start_with_socket`).
    pub fn unix_url(&self) -> String {
        format!("redis+unix://{}", self.dir.join(Self::SOCKET).display())
    }

    /// One field of `INFO replication`, such as `master_repl_offset`.
    pub fn replication(&self, field: &str) -> String {
        let info = redis_cli(self.port, &["info", "replication"]);
        info.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .unwrap_or("")
            .trim()
            .to_string()
    }

    /// Stops the server now, keeping nothing.
    pub fn stop(&mut self) {
        let Some(pid) = self.pid.take() else { return };
        redis_cli(self.port, &["shutdown", "nosave"]);
        // Still answering: our own process, stopped by its pid.
        if redis_cli(self.port, &["ping"]) == "PONG" {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits up to 5 s for a daemon just started: `pid` is set as soon as its pidfile names it (so
/// that a guard stops a daemon that never answers), and true comes back once it `answers`.
fn wait_for_daemon(pidfile: &Path, pid: &mut Option<u32>, answers: impl Fn() -> bool) -> bool {
    for _ in 0..50 {
        if let Ok(text) = std::fs::read_to_string(pidfile) {
            *pid = text.trim().parse().ok();
            if pid.is_some() && answers() {
                return true;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// Runs `redis-cli -p port args...` and returns its trimmed output.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// One Sentinel watching a primary as `service`, quick to act: the primary counts as down after
/// `down-after-milliseconds` of silence, and a failover that stalls is retried soon. A test
/// failover takes a second or two, not the half minute of the defaults.
pub struct Sentinel {
    dir: PathBuf,
    pub port: u16,
    pid: Option<u32>,
}

impl Sentinel {
    pub fn start(service: &str, primary_port: u16) -> Sentinel {
        require_redis_server();
        let found = Command::new("redis-sentinel").arg("--version").output().is_ok();
        assert!(
            found,
            "redis-sentinel is not installed; the failover tests need it (apt-get install redis-sentinel)"
        );
        let mut sentinel = Sentinel {
            dir: temp_dir("sentinel"),
            port: free_ports(1),
            pid: None,
        };
        let pidfile = sentinel.dir.join("sentinel.pid");
        // Sentinel rewrites its configuration file as it learns: a file of its own, writable.
        let conf = sentinel.dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndaemonize yes\npidfile {pid}\nlogfile {log}\ndir {dir}\n\
                 sentinel monitor {service} 127.0.0.1 {primary_port} 1\n\
                 sentinel down-after-milliseconds {service} 600\n\
                 sentinel failover-timeout {service} 2000\n\
                 sentinel parallel-syncs {service} 1\n",
                port = sentinel.port,
                pid = pidfile.display(),
                log = sentinel.dir.join("sentinel.log").display(),
                dir = sentinel.dir.display(),
            ),
        )
        .unwrap();
        let status = Command::new("redis-sentinel")
            .arg(&conf)
            .status()
            .expect("redis-sentinel runs");
        assert!(status.success(), "redis-sentinel did not start");
        let mut pid = None;
        let answered = wait_for_daemon(&pidfile, &mut pid, || sentinel.primary_port(service).is_some());
        sentinel.pid = pid;
        assert!(answered, "redis-sentinel on port {} did not answer", sentinel.port);
        sentinel
    }

    /// The port of the primary Sentinel names for `service` now.
    pub fn primary_port(&self, service: &str) -> Option<u16> {
        let out = redis_cli(self.port, &["sentinel", "get-master-addr-by-name", service]);
        out.lines().nth(1).and_then(|p| p.trim().parse().ok())
    }

    /// Sentinel's replicas of `service` as it sees them: `ip:port flags` per line.
    pub fn replicas(&self, service: &str) -> String {
        redis_cli(self.port, &["sentinel", "replicas", service])
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            // Sentinel logs its shutdown: gone first, so its directory stays removed.
            for _ in 0..50 {
                let alive = Command::new("kill").args(["-0", &pid.to_string()]).status();
                if !alive.is_ok_and(|s| s.success()) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
