//! Who may use the host, and how much: per-client caps on concurrent
//! requests (with a short queue) and on open event streams, a global cap on
//! event streams that keeps some instance slots for ordinary requests, and
//! the size and time limits a request must meet before a component sees it.
//!
//! A client is an IPv4 address, or an IPv6 /64 (what one customer network
//! usually gets). Counts live in sharded maps, so clients rarely share a lock,
//! and an entry lives only while its client has something open or waiting.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Everything a request must stay within.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body read; a larger one is answered 413.
    pub max_body_bytes: u64,
    /// Time a connection gets to send complete request headers (also when
    /// idle between two requests); `None` = no limit.
    pub header_timeout: Option<Duration>,
    /// Time a request body gets to arrive in full; then 408.
    pub body_timeout: Option<Duration>,
    /// Time from a request's arrival until its whole response is sent
    /// (event streams included); then its connection is closed.
    pub response_timeout: Option<Duration>,
    /// Requests one client may have in flight (event streams not counted).
    pub max_requests_per_client: u32,
    /// How long a request beyond that waits for a free turn before a 503.
    pub queue_timeout: Duration,
    /// Event streams one client may have open.
    pub max_streams_per_client: u32,
    /// Event streams open at once, over every client.
    pub max_streams: u32,
}

impl Limits {
    /// The stream cap: every instance slot but those kept for requests.
    pub fn streams_within(max_instances: u32, reserved_for_requests: u32) -> anyhow::Result<u32> {
        match max_instances.checked_sub(reserved_for_requests) {
            Some(streams) if streams > 0 => Ok(streams),
            _ => anyhow::bail!(
                "--reserved-for-requests ({reserved_for_requests}) must be below --max-instances ({max_instances}), \
                 or no event stream could ever open"
            ),
        }
    }
}

/// Why a request is turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client has its share of requests in flight and its turn did not come in time.
    TooManyRequests,
    /// The client has its share of event streams open.
    TooManyStreams,
    /// Every event-stream slot is taken (the rest are kept for requests).
    StreamsFull,
}

/// One client: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    V4(u32),
    V6(u64),
}

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(u32::from(v4)),
                None => Self::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }

    fn shard(self) -> usize {
        let bits = match self {
            Self::V4(v) => u64::from(v),
            Self::V6(v) => v ^ 0x9e37_79b9,
        };
        // Fibonacci hashing: neighbouring addresses land in different shards.
        (bits.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SHARD_BITS)) as usize
    }
}

const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;

/// What one client has in flight.
struct Client {
    requests: Arc<Semaphore>,
    streams: AtomicU32,
}

type Shard = Mutex<HashMap<ClientKey, Arc<Client>>>;

pub struct Admission {
    limits: Limits,
    shards: Box<[Shard]>,
    streams: AtomicU32,
}

fn lock(shard: &Shard) -> std::sync::MutexGuard<'_, HashMap<ClientKey, Arc<Client>>> {
    shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Admission {
    pub fn new(limits: Limits) -> Arc<Self> {
        let shards = (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect();
        Arc::new(Self { limits, shards, streams: AtomicU32::new(0) })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The client's entry, made if it has none; the caller holds a reference
    /// to it until it calls [`Admission::release`].
    fn client(&self, key: ClientKey) -> Arc<Client> {
        let mut shard = lock(&self.shards[key.shard()]);
        shard
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Client {
                    requests: Arc::new(Semaphore::new(self.limits.max_requests_per_client as usize)),
                    streams: AtomicU32::new(0),
                })
            })
            .clone()
    }

    /// Drops a reference taken by [`Admission::client`], and the entry with
    /// the last one (nothing open, nothing waiting).
    fn release(&self, key: ClientKey, client: Arc<Client>) {
        let mut shard = lock(&self.shards[key.shard()]);
        // The map's reference and ours: nobody else holds or waits.
        if Arc::strong_count(&client) == 2 {
            shard.remove(&key);
        }
        drop(client);
    }

    /// A turn for one request of `ip`: at once if the client has fewer than
    /// its share in flight, else when one of them ends, waiting at most the
    /// queue timeout (first come, first served).
    pub async fn request(self: &Arc<Self>, ip: IpAddr) -> Result<RequestTurn, Refusal> {
        let key = ClientKey::of(ip);
        let client = self.client(key);
        let permit = match client.requests.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => tokio::time::timeout(self.limits.queue_timeout, client.requests.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok),
        };
        let hold = Hold { admission: self.clone(), key, client: Some(client) };
        match permit {
            Some(permit) => Ok(RequestTurn { _permit: permit, _hold: hold }),
            None => Err(Refusal::TooManyRequests),
        }
    }

    /// A slot for one event stream of `ip`, if the client and the host have one free.
    pub fn stream(self: &Arc<Self>, ip: IpAddr) -> Result<StreamSlot, Refusal> {
        let key = ClientKey::of(ip);
        let hold = Hold { admission: self.clone(), key, client: Some(self.client(key)) };
        let client = hold.client.as_ref().expect("a hold has its client until dropped");
        if !take(&client.streams, self.limits.max_streams_per_client) {
            return Err(Refusal::TooManyStreams);
        }
        if !take(&self.streams, self.limits.max_streams) {
            client.streams.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::StreamsFull);
        }
        Ok(StreamSlot { hold })
    }

    /// Event streams open now, over every client.
    #[cfg(test)]
    fn open_streams(&self) -> u32 {
        self.streams.load(Ordering::Acquire)
    }

    #[cfg(test)]
    fn clients(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }
}

/// Adds one to `count` unless it is at `cap`.
fn take(count: &AtomicU32, cap: u32) -> bool {
    count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < cap).then_some(n + 1)).is_ok()
}

/// Keeps a client's entry alive; gives it back when dropped.
struct Hold {
    admission: Arc<Admission>,
    key: ClientKey,
    client: Option<Arc<Client>>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            self.admission.release(self.key, client);
        }
    }
}

/// One request's turn; the next waiting request of its client goes when dropped.
pub struct RequestTurn {
    // Field order matters: the permit goes back before the entry is checked.
    _permit: OwnedSemaphorePermit,
    _hold: Hold,
}

/// One open event stream; freed when dropped.
pub struct StreamSlot {
    hold: Hold,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Some(client) = &self.hold.client {
            client.streams.fetch_sub(1, Ordering::AcqRel);
        }
        self.hold.admission.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_body_bytes: 1024,
            header_timeout: None,
            body_timeout: None,
            response_timeout: None,
            max_requests_per_client: 2,
            queue_timeout: Duration::from_millis(100),
            max_streams_per_client: 2,
            max_streams: 3,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_slash_64() {
        assert_eq!(ClientKey::of(ip("10.0.0.1")), ClientKey::of(ip("::ffff:10.0.0.1")));
        assert_ne!(ClientKey::of(ip("10.0.0.1")), ClientKey::of(ip("10.0.0.2")));
        assert_eq!(ClientKey::of(ip("2001:db8:1:2::1")), ClientKey::of(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(ClientKey::of(ip("2001:db8:1:2::1")), ClientKey::of(ip("2001:db8:1:3::1")));
    }

    #[test]
    fn neighbouring_addresses_spread_over_the_shards() {
        let used: std::collections::HashSet<usize> =
            (0..256u32).map(|i| ClientKey::V4(0x7f00_0000 + i).shard()).collect();
        assert!(used.len() > SHARDS / 2, "{} shards used", used.len());
    }

    #[tokio::test]
    async fn a_client_beyond_its_share_waits_then_is_refused_while_others_go_at_once() {
        let admission = Admission::new(limits());
        let first = admission.request(ip("10.0.0.1")).await.unwrap();
        let _second = admission.request(ip("10.0.0.1")).await.unwrap();
        let started = std::time::Instant::now();
        assert_eq!(admission.request(ip("10.0.0.1")).await.err(), Some(Refusal::TooManyRequests));
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert!(admission.request(ip("10.0.0.2")).await.is_ok(), "another client is not held up");
        // A waiting request gets the turn that frees up.
        let waiting = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.request(ip("10.0.0.1")).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        assert!(waiting.await.unwrap());
    }

    #[tokio::test]
    async fn streams_are_capped_per_client_and_overall_and_entries_go_away() {
        let admission = Admission::new(limits());
        let a1 = admission.stream(ip("10.0.0.1")).unwrap();
        let _a2 = admission.stream(ip("10.0.0.1")).unwrap();
        assert_eq!(admission.stream(ip("10.0.0.1")).err(), Some(Refusal::TooManyStreams));
        let _b1 = admission.stream(ip("10.0.0.2")).unwrap();
        assert_eq!(admission.stream(ip("10.0.0.3")).err(), Some(Refusal::StreamsFull));
        assert_eq!(admission.open_streams(), 3);
        drop(a1);
        assert!(admission.stream(ip("10.0.0.3")).is_ok(), "a freed slot is there for anyone");
        drop((_a2, _b1));
        assert_eq!(admission.open_streams(), 0);
        assert_eq!(admission.clients(), 0, "no entry outlives what its client had open");
    }

    #[test]
    fn reserved_slots_must_leave_room_for_streams() {
        assert_eq!(Limits::streams_within(1000, 100).unwrap(), 900);
        assert!(Limits::streams_within(2, 2).is_err());
        assert!(Limits::streams_within(50, 100).is_err());
    }
}
