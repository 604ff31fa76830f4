//! How many wrong staff PINs are allowed, and from where.
//!
//! Two sliding windows, each counted with `increment` only:
//! - per client (an IPv4 address, or an IPv6 /64, which one household or
//!   phone usually holds whole): [`PER_CLIENT`] wrong PINs a minute;
//! - per role, over every client: [`PER_ROLE`] wrong PINs a minute against
//!   that role's PIN, so many addresses together cannot guess on at speed.
//!
//! An attempt reserves its place in every window it needs *before* the PIN
//! is compared (an `increment`; over the limit, the reservation is taken
//! back), so parallel attempts cannot slip past the limit together. A right
//! PIN gives its reservations back: only wrong ones count. One client can
//! never fill a role's window ([`PER_CLIENT`] < [`PER_ROLE`]), so it cannot
//! lock staff on other addresses out.
//!
//! The window is the current minute plus the share of the previous minute
//! that still lies within the last 60 s (the usual two-bucket estimate).
//!
//! Keys owned here (counters; deleted by [`sweep_old_windows`]):
//! - `auth/pin/client/{client}/{minute}`: wrong PINs from one client in one minute
//! - `auth/pin/role/{role}/{minute}`: wrong PINs against one role's PIN in one minute

use crate::auth::Role;
use crate::error::DomainError;
use crate::kv::KeyValue;
use std::net::IpAddr;

/// Wrong PINs one client may send in any 60 s.
pub const PER_CLIENT: i64 = 5;
/// Wrong PINs against one role, from all clients together, in any 60 s.
pub const PER_ROLE: i64 = 20;
const WINDOW_SECS: i64 = 60;
const PREFIX: &str = "auth/pin/";

/// The part of a client's address that identifies it: the whole IPv4
/// address, or the /64 of an IPv6 one (an IPv4-mapped IPv6 address is IPv4).
/// `spin-client-addr` comes as `ip:port` or `[ip]:port`.
pub fn client_key(addr: &str) -> String {
    let host = match addr.parse::<std::net::SocketAddr>() {
        Ok(socket) => socket.ip(),
        Err(_) => match addr.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => return "unknown".to_string(),
        },
    };
    match host {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}-{:x}-{:x}-{:x}", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The address a reverse proxy added last to a forwarding header
/// (`X-Forwarded-For: <what the client claimed>, <what the proxy saw>`, or
/// `X-Real-IP`): the one entry a client cannot forge. `None` when it is not
/// an address.
pub fn last_forwarded(value: &str) -> Option<String> {
    let last = value.rsplit(',').next()?.trim();
    (client_key(last) != "unknown").then(|| last.to_string())
}

/// One window a sign-in attempt is counted in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window {
    Client(String),
    Role(Role),
}

impl Window {
    fn limit(&self) -> i64 {
        match self {
            Window::Client(_) => PER_CLIENT,
            Window::Role(_) => PER_ROLE,
        }
    }

    fn key(&self, minute: i64) -> String {
        match self {
            Window::Client(client) => format!("{PREFIX}client/{client}/{minute}"),
            Window::Role(role) => format!("{PREFIX}role/{}/{minute}", role.as_str()),
        }
    }
}

/// A place taken in a window; give it back with [`Reservation::release`]
/// when the attempt turns out not to count (a right PIN).
#[derive(Debug)]
pub struct Reservation {
    key: String,
}

impl Reservation {
    pub fn release(self, kv: &impl KeyValue) -> Result<(), DomainError> {
        kv.increment(&self.key, -1)?;
        Ok(())
    }
}

/// Takes a place in `window` for an attempt at `now_secs`, or `None` when
/// the window is full (nothing is kept then).
pub fn reserve(kv: &impl KeyValue, window: &Window, now_secs: i64) -> Result<Option<Reservation>, DomainError> {
    let minute = now_secs.div_euclid(WINDOW_SECS);
    let key = window.key(minute);
    let current = kv.increment(&key, 1)?;
    let previous = kv.increment(&window.key(minute - 1), 0)?.max(0);
    if estimate(previous, current, now_secs) > window.limit() as f64 {
        kv.increment(&key, -1)?;
        return Ok(None);
    }
    Ok(Some(Reservation { key }))
}

/// Attempts in the last 60 s: all of this minute's, and the previous
/// minute's in proportion to how much of it is still inside the window.
fn estimate(previous: i64, current: i64, now_secs: i64) -> f64 {
    let into_minute = now_secs.rem_euclid(WINDOW_SECS) as f64;
    previous as f64 * (1.0 - into_minute / WINDOW_SECS as f64) + current as f64
}

/// Deletes the counters of windows that ended more than a minute ago.
/// Finding them is a scan of every key: the sweeper calls this once a minute.
pub fn sweep_old_windows(kv: &impl KeyValue, now_secs: i64) -> Result<u32, DomainError> {
    let minute = now_secs.div_euclid(WINDOW_SECS);
    let mut dropped = 0;
    for key in kv.list_prefix(PREFIX)? {
        let old = key.rsplit('/').next().and_then(|m| m.parse::<i64>().ok()).is_none_or(|m| m < minute - 1);
        if old {
            kv.delete(&key)?;
            dropped += 1;
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;

    #[test]
    fn clients_are_ipv4_addresses_or_ipv6_slash_64s() {
        let cases = [
            ("10.0.0.1:5000", "10.0.0.1"),
            ("10.0.0.1", "10.0.0.1"),
            ("[2001:db8:1:2:aaaa::1]:443", "2001-db8-1-2"),
            ("[2001:db8:1:2:bbbb::9]:80", "2001-db8-1-2"),
            ("2001:db8:1:3::1", "2001-db8-1-3"),
            ("[::ffff:192.0.2.7]:1", "192.0.2.7"),
            ("nonsense", "unknown"),
            ("", "unknown"),
        ];
        for (addr, key) in cases {
            assert_eq!(client_key(addr), key, "{addr}");
        }
    }

    #[test]
    fn behind_a_proxy_the_client_is_the_address_the_proxy_added_last() {
        assert_eq!(last_forwarded("203.0.113.5").as_deref(), Some("203.0.113.5"));
        assert_eq!(
            last_forwarded("1.2.3.4, 203.0.113.5").as_deref(),
            Some("203.0.113.5"),
            "the first is the client's claim"
        );
        assert_eq!(last_forwarded(" 2001:db8::1 ").as_deref(), Some("2001:db8::1"));
        assert_eq!(last_forwarded("[2001:db8::1]:4711").as_deref(), Some("[2001:db8::1]:4711"));
        for bad in ["", "unknown", "203.0.113.5, nonsense", "203.0.113.5,"] {
            assert_eq!(last_forwarded(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_window_admits_its_limit_then_refuses_without_counting_the_refusal() {
        let kv = MemoryKv::new();
        let window = Window::Client("10.0.0.1".into());
        let now = 6_000; // the start of a minute
        for _ in 0..PER_CLIENT {
            assert!(reserve(&kv, &window, now).unwrap().is_some());
        }
        assert!(reserve(&kv, &window, now + 10).unwrap().is_none());
        assert_eq!(kv.increment(&window.key(now / 60), 0).unwrap(), PER_CLIENT, "refusals are not kept");
    }

    #[test]
    fn the_window_slides_instead_of_emptying_at_the_minute() {
        let kv = MemoryKv::new();
        let window = Window::Client("10.0.0.1".into());
        let late_in_minute = 6_000 + 50;
        for _ in 0..PER_CLIENT {
            reserve(&kv, &window, late_in_minute).unwrap().unwrap();
        }
        // 45 s into the next minute a quarter of the burst still counts (1.25): three more fit.
        let admitted = (0..PER_CLIENT).filter(|_| reserve(&kv, &window, 6_000 + 105).unwrap().is_some()).count();
        assert_eq!(admitted, 3);
        // Two minutes on, the burst has slid out entirely.
        let admitted = (0..PER_CLIENT + 1).filter(|_| reserve(&kv, &window, 6_000 + 180).unwrap().is_some()).count();
        assert_eq!(admitted as i64, PER_CLIENT);
    }

    #[test]
    fn a_released_reservation_gives_its_place_back() {
        let kv = MemoryKv::new();
        let window = Window::Role(Role::Admin);
        for _ in 0..PER_ROLE * 3 {
            reserve(&kv, &window, 6_000).unwrap().unwrap().release(&kv).unwrap();
        }
        assert_eq!(kv.increment(&window.key(100), 0).unwrap(), 0);
    }

    #[test]
    fn parallel_attempts_cannot_pass_the_limit_together() {
        let kv = std::sync::Arc::new(MemoryKv::new());
        let threads: Vec<_> = (0..50)
            .map(|_| {
                let kv = kv.clone();
                std::thread::spawn(move || reserve(&*kv, &Window::Client("10.0.0.9".into()), 6_000).unwrap().is_some())
            })
            .collect();
        let admitted = threads.into_iter().map(|t| t.join().unwrap()).filter(|ok| *ok).count();
        assert_eq!(admitted as i64, PER_CLIENT);
    }

    #[test]
    fn one_client_cannot_fill_a_roles_window() {
        const { assert!(PER_CLIENT < PER_ROLE) };
    }

    #[test]
    fn old_windows_are_swept_and_current_ones_kept() {
        let kv = MemoryKv::new();
        let window = Window::Client("10.0.0.1".into());
        reserve(&kv, &window, 60 * 10).unwrap();
        reserve(&kv, &window, 60 * 12).unwrap();
        reserve(&kv, &window, 60 * 13).unwrap();
        // Each attempt also read (and so made) its previous minute's counter: 9 … 13.
        assert_eq!(sweep_old_windows(&kv, 60 * 13).unwrap(), 3);
        assert_eq!(kv.list_prefix(PREFIX).unwrap().len(), 2);
    }
}
