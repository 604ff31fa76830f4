//! HTTP/1.1 by hand, for the tests of the host's limits: requests sent from
//! a chosen loopback address (each 127.0.0.x is a distinct client to the
//! host), half-sent requests, and replies read from a socket kept open.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A TCP connection to `to` from `from` (bound before it connects).
pub fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap_or_else(|e| panic!("binding {from}: {e}"));
    socket.connect(&to.into()).unwrap_or_else(|e| panic!("connecting from {from} to {to}: {e}"));
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream
}

/// A response read off a socket.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `error.code` of a JSON error reply.
    pub fn error_code(&self) -> String {
        let json: serde_json::Value =
            serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()));
        json["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error: {}", self.text())).to_string()
    }
}

/// Reads up to and including `end` (byte by byte: nothing after it is taken).
fn read_through(stream: &mut TcpStream, end: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut read = Vec::new();
    let mut byte = [0u8; 1];
    while !read.ends_with(end) {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        read.push(byte[0]);
    }
    Ok(read)
}

/// A chunked body, to its last chunk.
fn read_chunked(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_through(stream, b"\r\n")?;
        let size = std::str::from_utf8(&line[..line.len() - 2])
            .ok()
            .and_then(|l| usize::from_str_radix(l.split(';').next().unwrap_or("").trim(), 16).ok())
            .ok_or(std::io::ErrorKind::InvalidData)?;
        let mut chunk = vec![0u8; size + 2];
        stream.read_exact(&mut chunk)?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

/// Reads one response: its head, and its body unless it is an event stream
/// (left unread, for the test to keep open).
pub fn read_reply(stream: &mut TcpStream) -> std::io::Result<RawReply> {
    let head = read_through(stream, b"\r\n\r\n")?;
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut reply = RawReply { status, headers, body: Vec::new() };
    if reply.header("content-type").is_some_and(|t| t.starts_with("text/event-stream")) {
        return Ok(reply);
    }
    if reply.header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        reply.body = read_chunked(stream)?;
    } else {
        reply.body = vec![0u8; reply.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0)];
        stream.read_exact(&mut reply.body)?;
    }
    Ok(reply)
}

/// Sends `request` (a whole HTTP/1.1 request) from `from` and reads the reply.
pub fn send_from(from: Ipv4Addr, to: SocketAddr, request: &str) -> RawReply {
    let mut stream = connect_from(from, to);
    stream.write_all(request.as_bytes()).unwrap();
    read_reply(&mut stream).unwrap_or_else(|e| panic!("no reply from {to} to {from}: {e}"))
}

/// `GET path` from `from`, on a connection that closes after it.
pub fn get_from(from: Ipv4Addr, to: SocketAddr, path: &str) -> RawReply {
    send_from(from, to, &format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"))
}

/// How long until the host closes `stream` (reads nothing but the end), at most `limit`.
pub fn time_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(started.elapsed()),
            Err(_) => return None,
        }
    }
}

/// The resident memory of process `pid`, in KiB (`VmRSS` in `/proc`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}
