//! What one client on the network can do to the host, and no longer can:
//! hold every instance with slow requests or event streams, keep
//! connections open with half-sent headers or bodies, upload bodies far
//! larger than any API takes. Each 127.0.0.x address is a distinct client.

use spinpresso_e2e::raw::*;
use spinpresso_e2e::*;
use std::io::Write;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const FIXTURE: &str = "tests/fixtures/kvtest.toml";

fn client(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

fn kvtest(scratch: &Scratch, args: &[&str]) -> Host {
    let options = HostOptions::new(FIXTURE, scratch).env("SPIN_VARIABLE_SECRET_PIN", "1234");
    Host::start(&options.args(&[&["--sweep-every", "0"], args].concat()))
}

fn json_error_of(reply: &RawReply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"), "{reply:?}");
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"), "{reply:?}");
    assert_eq!(reply.error_code(), code);
}

#[test]
fn one_clients_flood_of_slow_requests_does_not_lock_out_another() {
    let _heavy = one_heavy_at_a_time();
    let scratch = Scratch::new("limits-flood");
    // 60 instance slots; the flood sends 100 requests that each take 3 s.
    let host = kvtest(&scratch, &["--max-instances", "60", "--reserved-for-requests", "10", "--queue-timeout", "1"]);
    let addr = host.addr;
    let flood = std::thread::spawn(move || {
        in_parallel(100, move |_| {
            let started = Instant::now();
            (get_from(client(2), addr, "/_test/busy?ms=3000"), started.elapsed())
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let other = get_from(client(3), addr, "/_test/busy?ms=0");
    assert_eq!(other.status, 200, "another client is served: {}", other.text());
    assert!(started.elapsed() < Duration::from_millis(900), "at once: {:?}", started.elapsed());

    let replies = flood.join().unwrap();
    let served = replies.iter().filter(|(r, _)| r.status == 200).count();
    let refused: Vec<_> = replies.iter().filter(|(r, _)| r.status == 503).collect();
    assert_eq!(served, 50, "the flooding client gets its share (--max-requests-per-client 50)");
    assert_eq!(refused.len(), 50);
    for (reply, took) in refused {
        json_error_of(reply, 503, "too_many_requests");
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert!(*took >= Duration::from_millis(900) && *took < Duration::from_millis(2900), "queued 1 s: {took:?}");
    }
}

/// Opens `n` event streams from `from` (one connection each) and reads their heads.
fn open_streams(host: &Host, from: Ipv4Addr, n: usize) -> (Vec<std::net::TcpStream>, Vec<RawReply>) {
    let request = "GET /api/shops/main/events/board HTTP/1.1\r\nhost: localhost\r\naccept: text/event-stream\r\n\r\n";
    let mut streams: Vec<_> = (0..n)
        .map(|_| {
            let mut stream = connect_from(from, host.addr);
            stream.write_all(request.as_bytes()).unwrap();
            stream
        })
        .collect();
    let heads = streams.iter_mut().map(|s| read_reply(s).expect("a response head")).collect();
    (streams, heads)
}

fn count(replies: &[RawReply], status: u16) -> usize {
    replies.iter().filter(|r| r.status == status).count()
}

#[test]
fn event_streams_from_one_client_leave_instances_for_everyone_else() {
    let _heavy = one_heavy_at_a_time();
    let scratch = Scratch::new("limits-streams");
    // The defaults: 1,000 instances, 100 kept for requests, 500 streams per client.
    let host = Host::start(&HostOptions::new("spin.toml", &scratch));
    let (_a, heads) = open_streams(&host, client(4), 1100);
    assert_eq!(count(&heads, 200), 500, "one client gets --max-streams-per-client streams");
    assert_eq!(count(&heads, 503), 600);
    for refused in heads.iter().filter(|r| r.status == 503) {
        json_error_of(refused, 503, "too_many_streams");
    }
    // Another client, whose first 400 streams fill the 900 slots streams may use.
    let (_b, heads) = open_streams(&host, client(5), 450);
    assert_eq!(count(&heads, 200), 400, "streams never take the 100 slots kept for requests");
    for refused in heads.iter().filter(|r| r.status == 503) {
        json_error_of(refused, 503, "busy");
        assert_eq!(refused.header("retry-after"), Some("1"));
    }
    // Requests still have their slots.
    for n in 6..9 {
        let reply = get_from(client(n), host.addr, "/api/shops/main/config");
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let replies = in_parallel(50, {
        let addr = host.addr;
        move |_| get_from(client(9), addr, "/api/shops/main/board").status
    });
    assert!(replies.iter().all(|s| *s == 200), "{replies:?}");
}

#[test]
fn a_connection_that_sends_no_complete_headers_is_closed() {
    let scratch = Scratch::new("limits-headers");
    let host = kvtest(&scratch, &["--header-timeout", "1"]);
    let limit = Duration::from_secs(5);
    // Half a request, never finished.
    let mut half = connect_from(client(10), host.addr);
    half.write_all(b"GET /_test/get/x HTTP/1.1\r\nhost: localhost\r\nx-slow: ").unwrap();
    let closed = time_until_closed(&mut half, limit).expect("half-sent headers are closed");
    assert!(closed >= Duration::from_millis(800), "{closed:?}");
    // Nothing at all.
    let mut silent = connect_from(client(10), host.addr);
    assert!(time_until_closed(&mut silent, limit).is_some(), "a silent connection is closed");
    // An idle keep-alive connection, after a request.
    let mut idle = connect_from(client(10), host.addr);
    idle.write_all(b"GET /_test/get/x HTTP/1.1\r\nhost: localhost\r\n\r\n").unwrap();
    assert_eq!(read_reply(&mut idle).unwrap().status, 200);
    let closed = time_until_closed(&mut idle, limit).expect("an idle connection is closed");
    assert!(closed >= Duration::from_millis(800), "{closed:?}");
}

#[test]
fn a_stalled_body_gets_408() {
    let scratch = Scratch::new("limits-body-time");
    let host = kvtest(&scratch, &["--body-timeout", "1"]);
    let mut stream = connect_from(client(11), host.addr);
    stream
        .write_all(b"POST /_test/set/k HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\nten bytes.")
        .unwrap();
    let started = Instant::now();
    let reply = read_reply(&mut stream).unwrap();
    json_error_of(&reply, 408, "request_timeout");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    // Nothing of it was stored.
    assert_eq!(get_from(client(11), host.addr, "/_test/get/k").text(), r#"{"value":null}"#);
}

#[test]
fn a_component_that_does_not_answer_gets_504_and_its_instance_back() {
    let scratch = Scratch::new("limits-request-time");
    let host = kvtest(&scratch, &["--request-timeout", "1", "--max-instances", "2", "--reserved-for-requests", "1"]);
    let addr = host.addr;
    let started = Instant::now();
    let replies = in_parallel(2, move |i| get_from(client(12 + i as u8), addr, "/_test/busy?ms=60000"));
    for reply in &replies {
        json_error_of(reply, 504, "timeout");
    }
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    // Both slots are free again: the stopped guests do not hold them.
    let replies = in_parallel(2, move |i| get_from(client(12 + i as u8), addr, "/_test/busy?ms=10").status);
    assert_eq!(replies, [200, 200]);
}

#[test]
fn a_client_that_stops_reading_its_answer_loses_it_at_the_response_timeout() {
    let scratch = Scratch::new("limits-response-time");
    let host = kvtest(&scratch, &["--response-timeout", "5", "--max-instances", "2", "--reserved-for-requests", "1"]);
    // Two clients ask for far more than the socket buffers hold, and read none of it.
    let asked = Instant::now();
    let stalled: Vec<_> = (0..2)
        .map(|i| {
            let mut stream = connect_from(client(30 + i), host.addr);
            stream.write_all(b"GET /_test/big?bytes=64000000 HTTP/1.1\r\nhost: localhost\r\n\r\n").unwrap();
            stream
        })
        .collect();
    // Their guests get stuck writing, each holding one of the two instances.
    let held = |reply: &RawReply| reply.status == 503 && reply.error_code() == "busy";
    while !held(&get_from(client(32), host.addr, "/_test/busy?ms=0")) {
        assert!(asked.elapsed() < Duration::from_secs(4), "the stalled answers never held both instances");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The response timeout (5 s after they asked) frees them.
    loop {
        let reply = get_from(client(33), host.addr, "/_test/busy?ms=0");
        if reply.status == 200 {
            break;
        }
        json_error_of(&reply, 503, "busy");
        assert!(asked.elapsed() < Duration::from_secs(15), "the stalled answers still hold their instances");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(asked.elapsed() >= Duration::from_secs(4), "freed only by the timeout: {:?}", asked.elapsed());
    drop(stalled);
}

/// Sends `size` bytes of body in 64 KiB pieces (chunked if `chunked`), ignoring
/// write errors (the host may close early), then reads the reply if any.
fn upload(from: Ipv4Addr, host: std::net::SocketAddr, size: usize, chunked: bool) -> Option<RawReply> {
    let mut stream = connect_from(from, host);
    let framing = if chunked { "transfer-encoding: chunked".to_string() } else { format!("content-length: {size}") };
    let head = format!("POST /_test/size HTTP/1.1\r\nhost: localhost\r\n{framing}\r\n\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    let piece = vec![b'x'; 64 << 10];
    let mut sent = 0;
    while sent < size {
        let n = piece.len().min(size - sent);
        let written = match chunked {
            true => write!(stream, "{n:x}\r\n")
                .and_then(|()| stream.write_all(&piece[..n]))
                .and_then(|()| stream.write_all(b"\r\n")),
            false => stream.write_all(&piece[..n]),
        };
        if written.is_err() {
            break;
        }
        sent += n;
    }
    if chunked && sent == size {
        let _ = stream.write_all(b"0\r\n\r\n");
    }
    read_reply(&mut stream).ok()
}

#[test]
fn an_oversized_body_gets_413_without_the_host_reading_it() {
    let _heavy = one_heavy_at_a_time();
    let scratch = Scratch::new("limits-body-size");
    let host = kvtest(&scratch, &[]);
    let addr = host.addr;
    // Within the limit: the component gets the whole body.
    let reply = upload(client(20), addr, 1 << 20, true).unwrap();
    assert_eq!(reply.text(), r#"{"bytes":1048576}"#);
    // A declared length above 1 MiB: refused before any of it is read.
    let mut stream = connect_from(client(20), addr);
    stream.write_all(b"POST /_test/size HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2000000\r\n\r\n").unwrap();
    json_error_of(&read_reply(&mut stream).unwrap(), 413, "payload_too_large");

    let before = rss_kib(host.pid());
    for chunked in [false, true] {
        let replies = in_parallel(8, move |i| upload(client(21 + i as u8), addr, 24 << 20, chunked));
        let answered: Vec<_> = replies.iter().flatten().collect();
        for reply in &answered {
            json_error_of(reply, 413, "payload_too_large");
        }
        assert!(!answered.is_empty(), "some uploaders read their 413 (chunked: {chunked})");
    }
    let after = rss_kib(host.pid());
    println!("host RSS before sixteen 24 MB uploads: {before} KiB, after: {after} KiB");
    assert!(after < before + 48 * 1024, "the host's memory stays bounded: {before} KiB → {after} KiB");
    assert_eq!(get_from(client(20), addr, "/_test/busy?ms=0").status, 200, "and it still serves");
}
