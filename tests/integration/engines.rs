//! Extra Docker engines for tests that must restart, kill or isolate one:
//! a `dockerd` of its own (data root, exec root, pid file, socket, and a
//! bridge made for it first), stopped by its pid and cleaned up on drop.
//! Never `--bridge=none`: such a daemon deletes the host's docker0.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{free_port, require_docker, test_image};

pub struct SecondEngine {
    root: PathBuf,
    bridge: String,
    child: Option<Child>,
    /// Also `tcp://127.0.0.1:PORT` with `--tlsverify`, with the certificates
    /// of this folder (examples/tls/make-certs.sh's file names).
    tls: Option<(u16, PathBuf)>,
}

fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd).args(args).output().map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl SecondEngine {
    /// Starts a new engine and loads the test image into it.
    pub fn start() -> SecondEngine {
        Self::start_with(None)
    }

    /// [`SecondEngine::start`], also listening on a loopback port for
    /// mutual TLS with the certificates in `certs` (see [`SecondEngine::tls_host`]).
    pub fn start_tls(certs: &Path) -> SecondEngine {
        Self::start_with(Some((free_port(), certs.to_path_buf())))
    }

    fn start_with(tls: Option<(u16, PathBuf)>) -> SecondEngine {
        require_docker();
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let id = (std::process::id() % 1000) * 10 + n;
        // Short: a unix socket path has at most 107 bytes.
        let root = PathBuf::from(format!("/tmp/dn-eng-{id}"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let bridge = format!("dnbr{id}");
        let _ = run("ip", &["link", "del", &bridge]);
        run("ip", &["link", "add", &bridge, "type", "bridge"])
            .expect("a bridge for the second engine (needs root and iproute2)");
        // A subnet of the machine's own, for containers that will never use it (tests run them with --network none).
        let subnet = format!("10.213.{}.1/24", id % 250);
        run("ip", &["addr", "add", &subnet, "dev", &bridge]).unwrap();
        run("ip", &["link", "set", &bridge, "up"]).unwrap();
        let mut engine = SecondEngine { root, bridge, child: None, tls };
        engine.spawn();
        let mut save = Command::new("docker").args(["save", &test_image()]).stdout(Stdio::piped()).spawn().unwrap();
        let load = Command::new("docker")
            .args(["-H", &engine.host(), "load", "-q"])
            .stdin(save.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(save.wait().unwrap().success(), "docker save of the test image failed");
        assert!(load.status.success(), "loading the test image: {}", String::from_utf8_lossy(&load.stderr));
        engine
    }

    /// `unix://…` for DOCKER_HOST.
    pub fn host(&self) -> String {
        format!("unix://{}", self.root.join("sock").display())
    }

    /// `tcp://127.0.0.1:PORT` of an engine started with [`SecondEngine::start_tls`].
    pub fn tls_host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.tls.as_ref().expect("started with start_tls").0)
    }

    /// The socket path itself (for a proxy in front of it).
    pub fn socket(&self) -> PathBuf {
        self.root.join("sock")
    }

    /// The running dockerd's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the engine is running").id()
    }

    /// SIGKILL by pid, as the OOM killer would; waits for it to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = run("kill", &["-KILL", &child.id().to_string()]);
            let _ = child.wait();
        }
    }

    /// Starts the engine again after [`SecondEngine::stop`] or [`SecondEngine::kill9`]; returns once it answers.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the engine is still running");
        self.spawn();
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.root.join("log")).unwrap();
        let dir = |name: &str| self.root.join(name).display().to_string();
        let child = Command::new("dockerd")
            .args(["--data-root", &dir("data"), "--exec-root", &dir("exec"), "--pidfile", &dir("pid")])
            .args(["-H", &self.host(), "--iptables=false", "--bridge", &self.bridge])
            .args(self.tls_args())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd (Debian's docker.io)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while run("docker", &["-H", &self.host(), "info", "--format", "{{.ServerVersion}}"]).is_err() {
            assert!(Instant::now() < deadline, "the second engine did not come up:\n{}", self.log_tail());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn tls_args(&self) -> Vec<String> {
        let Some((port, certs)) = &self.tls else { return Vec::new() };
        let file = |name: &str| certs.join(name).display().to_string();
        vec![
            "-H".into(),
            format!("tcp://127.0.0.1:{port}"),
            "--tlsverify".into(),
            format!("--tlscacert={}", file("ca.pem")),
            format!("--tlscert={}", file("server-cert.pem")),
            format!("--tlskey={}", file("server-key.pem")),
        ]
    }

    /// Stops the engine by its pid (SIGTERM, as a service manager would) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = run("kill", &["-TERM", &child.id().to_string()]);
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then the same engine again: what `systemctl restart docker` does.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn docker(&self, args: &[&str]) -> String {
        let host = self.host();
        let all: Vec<&str> = ["-H", host.as_str()].into_iter().chain(args.iter().copied()).collect();
        run("docker", &all).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn state(&self, container: &str) -> String {
        self.docker(&["inspect", "-f", "{{.State.Status}}", container])
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.root.join("log")).unwrap_or_default();
        log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        if self.child.is_some() {
            let ids = run("docker", &["-H", &self.host(), "ps", "-aq"]).unwrap_or_default();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            for batch in ids.chunks(100) {
                let host = self.host();
                let _ = run("docker", &[&["-H", host.as_str(), "rm", "-f"], batch].concat());
            }
        }
        self.stop();
        let _ = run("ip", &["link", "del", &self.bridge]);
        // dockerd bind-mounts its data root onto itself; one killed with
        // SIGKILL leaves that mount behind (and the next one mounts again).
        for dir in ["exec", "data"] {
            let _ = run("umount", &["-R", &self.root.join(dir).display().to_string()]);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
