//! A real `pointpipe serve` process on an ephemeral loopback port, and a real
//! HTTP client (ureq) to talk to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server, killed when dropped.
pub struct Server {
    pub base: String,
    child: Child,
    agent: ureq::Agent,
}

/// One HTTP answer.
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status, self.body
            )
        })
    }
}

impl Server {
    /// Starts `pointpipe serve ARGS --addr 127.0.0.1:0` and waits until
    /// `/readyz` answers 200 (at most 120 s).
    pub fn start(args: &[&str]) -> Server {
        let server = Server::spawn(args);
        server.wait_ready();
        server
    }

    /// Starts the server without waiting for the layers.
    pub fn spawn(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pointpipe"))
            .arg("serve")
            .args(args)
            .args(["--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pointpipe serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Server { base, child, agent }
    }

    pub fn wait_ready(&self) {
        let start = Instant::now();
        loop {
            if let Ok(r) = self.try_get("/readyz")
                && r.status == 200
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "server not ready after 120 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn try_get(&self, path: &str) -> Result<Reply, ureq::Error> {
        let mut r = self.agent.get(&format!("{}{path}", self.base)).call()?;
        Ok(reply(&mut r))
    }

    /// GET `path` (with its query string).
    pub fn get(&self, path: &str) -> Reply {
        self.try_get(path)
            .unwrap_or_else(|e| panic!("GET {path}: connection failed: {e}"))
    }

    /// Sends `method path` with a body and a content type.
    pub fn send(&self, method: &str, path: &str, content_type: Option<&str>, body: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        let result = match method {
            "POST" => {
                let mut req = self.agent.post(&url);
                if let Some(ct) = content_type {
                    req = req.header("content-type", ct);
                }
                req.send(body)
            }
            "PUT" => {
                let mut req = self.agent.put(&url);
                if let Some(ct) = content_type {
                    req = req.header("content-type", ct);
                }
                req.send(body)
            }
            "DELETE" => self.agent.delete(&url).call(),
            "GET" => self.agent.get(&url).call(),
            other => panic!("method {other}"),
        };
        let mut r = result.unwrap_or_else(|e| panic!("{method} {path}: connection failed: {e}"));
        reply(&mut r)
    }

    /// POST a JSON body.
    pub fn post_json(&self, path: &str, body: &str) -> Reply {
        self.send("POST", path, Some("application/json"), body)
    }

    /// Sends a POST of `body_len` bytes of JSON padding over a plain TCP
    /// socket, tolerating the server closing early (as it may once it has
    /// refused the body), and returns the status line's code and the raw answer.
    pub fn post_oversized(&self, path: &str, body_len: usize) -> (u16, String) {
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {body_len}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).expect("send the head");
        let chunk = vec![b' '; 64 << 10];
        let mut sent = 0;
        while sent < body_len {
            let n = chunk.len().min(body_len - sent);
            if stream.write_all(&chunk[..n]).is_err() {
                break;
            }
            sent += n;
        }
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).to_string();
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {answer:?}"));
        (status, answer)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

fn reply(r: &mut ureq::http::Response<ureq::Body>) -> Reply {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = r
        .body_mut()
        .with_config()
        .limit(512 << 20)
        .read_to_string()
        .unwrap_or_default();
    Reply {
        status,
        content_type,
        body,
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
