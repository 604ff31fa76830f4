//! A throw-away Redis server on 127.0.0.1 (Debian's `redis-server`), plain
//! or TLS-only, for the tests that run the host on a Redis store.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    /// Starts Redis on a free port.
    pub fn start() -> Redis {
        Self::start_with(&[], None)
    }

    /// Starts Redis serving only TLS, with the certificate, key and CA in
    /// `dir` (`cert.pem`, `key.pem`, `ca.pem`); clients need no certificate.
    pub fn start_tls(dir: &Path) -> Redis {
        let [cert, key, ca] = ["cert.pem", "key.pem", "ca.pem"].map(|f| dir.join(f).to_str().unwrap().to_string());
        let args = ["--port", "0", "--tls-cert-file", &cert, "--tls-key-file", &key, "--tls-ca-cert-file", &ca];
        Self::start_with(&[&args[..], &["--tls-auth-clients", "no"]].concat(), Some("--tls-port"))
    }

    /// Another process may take the port between its choice and Redis
    /// binding it (Redis then exits): that try is dropped and another port
    /// chosen. Ready once Redis answers on it (a TLS port: accepts connections).
    fn start_with(args: &[&str], port_flag: Option<&str>) -> Redis {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args([port_flag.unwrap_or("--port"), &port.to_string()])
                .args(args)
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server is installed (scripts/test.sh installs it)");
            // Dropping it kills and reaps the process, also if it never answers.
            let mut redis = Redis { child, port };
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if redis.child.try_wait().ok().flatten().is_some() {
                    break; // it could not bind the port
                }
                let up = match port_flag {
                    None => answers_ping(port),
                    Some(_) => std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
                };
                if up && redis.child.try_wait().ok().flatten().is_none() {
                    return redis;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("redis-server did not start");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(sent.success(), "kill -{name}");
    }
}

/// Whether a Redis server answers PING on the port.
fn answers_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A runtime config putting the `default` store on `url`, written in `dir`.
pub fn runtime_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("runtime-config.toml");
    std::fs::write(&path, format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"{url}\"\n")).unwrap();
    path
}
