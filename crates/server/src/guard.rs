//! Failed sign-ins and bearer failures, limited per peer address: a peer with `limit` failures in
//! the last minute is refused (429 with Retry-After) whatever it sends next, until the oldest of
//! them is a minute old. So a guess at the read token costs a minute per `limit` tries, and a
//! right guess among the refused ones is never confirmed.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

const WINDOW: Duration = Duration::from_secs(60);
/// Peers tracked at once; past this, new peers share one entry (and so one limit) until old
/// entries expire, which keeps memory bounded under a spread-out attack.
const MAX_PEERS: usize = 65_536;

/// Recent failures per peer.
#[derive(Debug)]
pub(crate) struct Failures {
    limit: usize,
    map: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Failures {
    /// At most `per_minute` failures a minute per peer (0: no limit).
    pub(crate) fn new(per_minute: u32) -> Failures {
        Failures {
            limit: per_minute as usize,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// How long `peer` must wait before it may try again; None when it may now.
    pub(crate) fn blocked(&self, peer: IpAddr) -> Option<Duration> {
        self.blocked_at(peer, Instant::now())
    }

    fn blocked_at(&self, peer: IpAddr, now: Instant) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let map = self.map.lock().ok()?;
        let q = map.get(&key(peer)).or_else(|| {
            (map.len() >= MAX_PEERS)
                .then(|| map.get(&OVERFLOW))
                .flatten()
        })?;
        let recent = q
            .iter()
            .filter(|t| now.duration_since(**t) < WINDOW)
            .count();
        if recent < self.limit {
            return None;
        }
        q.front()
            .map(|oldest| WINDOW.saturating_sub(now.duration_since(*oldest)))
            .filter(|d| !d.is_zero())
    }

    /// Records a failure of `peer`.
    pub(crate) fn failed(&self, peer: IpAddr) {
        self.failed_at(peer, Instant::now());
    }

    fn failed_at(&self, peer: IpAddr, now: Instant) {
        if self.limit == 0 {
            return;
        }
        let Ok(mut map) = self.map.lock() else { return };
        let mut k = key(peer);
        if !map.contains_key(&k) && map.len() >= MAX_PEERS {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
            if map.len() >= MAX_PEERS {
                k = OVERFLOW;
            }
        }
        let q = map.entry(k).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW || q.len() >= self.limit)
        {
            q.pop_front();
        }
        q.push_back(now);
    }
}

const OVERFLOW: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// The limit's key: an IPv4 address, or an IPv6 address's /64 (one host usually has a whole /64).
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The peer a request came from: the connection's address, or, when that is a trusted proxy,
/// the last address in X-Forwarded-For that is not one (the one the proxies saw connect).
pub(crate) fn peer(conn: SocketAddr, h: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let ip = conn.ip();
    if !trusted.contains(&ip) {
        return ip;
    }
    let forwarded: Vec<IpAddr> = h
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|a| !trusted.contains(a))
        .unwrap_or(ip)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn the_limit_counts_failures_in_the_last_minute() {
        let f = Failures::new(20);
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "203.0.113.8".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..20 {
            assert_eq!(f.blocked_at(a, t0 + Duration::from_secs(i)), None, "{i}");
            f.failed_at(a, t0 + Duration::from_secs(i));
        }
        // The 21st try within the minute is refused until the first failure is a minute old.
        let wait = f.blocked_at(a, t0 + Duration::from_secs(20)).unwrap();
        assert_eq!(wait, Duration::from_secs(40));
        assert_eq!(f.blocked_at(b, t0 + Duration::from_secs(20)), None);
        assert_eq!(f.blocked_at(a, t0 + Duration::from_secs(60)), None);
        // 0 turns the limit off.
        let off = Failures::new(0);
        for _ in 0..100 {
            off.failed_at(a, t0);
        }
        assert_eq!(off.blocked_at(a, t0), None);
    }

    #[test]
    fn ipv6_peers_are_limited_by_their_64() {
        let f = Failures::new(2);
        let t0 = Instant::now();
        f.failed_at("2001:db8:1:2::1".parse().unwrap(), t0);
        f.failed_at("2001:db8:1:2::ffff".parse().unwrap(), t0);
        assert!(
            f.blocked_at("2001:db8:1:2:abcd::9".parse().unwrap(), t0)
                .is_some()
        );
        assert!(
            f.blocked_at("2001:db8:1:3::1".parse().unwrap(), t0)
                .is_none()
        );
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("198.51.100.1, 192.0.2.9"),
        );
        let proxy: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        let direct: SocketAddr = "192.0.2.50:4000".parse().unwrap();
        let trusted = [proxy.ip()];
        // Not behind the proxy: the header is the client's own claim, ignored.
        assert_eq!(peer(direct, &h, &trusted), direct.ip());
        // Behind it: the address the proxy appended (the client could have sent the first one).
        assert_eq!(
            peer(proxy, &h, &trusted),
            "192.0.2.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(peer(proxy, &HeaderMap::new(), &trusted), proxy.ip());
        assert_eq!(peer(proxy, &h, &[]), proxy.ip());
    }
}
