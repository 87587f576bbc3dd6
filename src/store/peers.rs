//! The peers of one torrent, laid out for memory and for O(numwant) sampling: one vector with the
//! seeders first and the leechers after them, a hash index once the swarm outgrows a linear scan,
//! and a lower bound on the oldest announce so expiry costs nothing until a peer can have expired.

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use hashbrown::HashTable;
use rand::Rng;

use crate::protocol::ids::PeerId;
use crate::protocol::{AnnouncePeer, Family};
use crate::store::users::UserId;

/// Swarms up to this size are searched linearly; bigger ones get a hash index.
const INDEX_FROM: usize = 16;

/// One peer, stored compactly (72 bytes). The address is kept as 16 bytes (IPv4 mapped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    ip: [u8; 16],
    port: u16,
    /// This peer's `event=completed` has been counted.
    pub completed: bool,
    /// Unix seconds (u32 lasts until 2106).
    last_seen: u32,
    /// The user whose passkey the peer announced with (0: none).
    pub user: UserId,
    pub peer_id: PeerId,
    pub uploaded: u64,
    pub downloaded: u64,
    left: u64,
}

impl Entry {
    pub fn new(addr: SocketAddr, user: UserId, peer_id: PeerId, last_seen_unix: u64) -> Entry {
        Entry {
            ip: mapped(addr.ip()),
            port: addr.port(),
            completed: false,
            last_seen: clamp_secs(last_seen_unix),
            user,
            peer_id,
            uploaded: 0,
            downloaded: 0,
            left: 0,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        let v6 = Ipv6Addr::from(self.ip);
        let ip = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
        SocketAddr::new(ip, self.port)
    }

    pub fn left(&self) -> u64 {
        self.left
    }

    pub fn is_seeder(&self) -> bool {
        self.left == 0
    }

    pub fn last_seen_unix(&self) -> u64 {
        u64::from(self.last_seen)
    }

    pub fn touch(&mut self, now_unix: u64) {
        self.last_seen = clamp_secs(now_unix);
    }

    fn same(&self, key: &Key) -> bool {
        self.ip == key.ip && self.port == key.port && self.user == key.user
    }

    fn key(&self) -> Key {
        Key {
            ip: self.ip,
            port: self.port,
            user: self.user,
        }
    }
}

fn mapped(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn clamp_secs(unix: u64) -> u32 {
    u32::try_from(unix).unwrap_or(u32::MAX)
}

/// What identifies a peer: its address and port, and its user. A client restarting with a new
/// peer id replaces itself; two users behind one address stay apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    ip: [u8; 16],
    port: u16,
    user: UserId,
}

impl Key {
    pub fn new(addr: SocketAddr, user: UserId) -> Key {
        Entry::new(addr, user, PeerId([0; 20]), 0).key()
    }
}

struct Index {
    table: HashTable<u32>,
    /// Peers per address (IPv4 mapped), for the per-address cap.
    per_ip: HashTable<([u8; 16], u32)>,
    hasher: RandomState,
}

impl Index {
    fn hash(&self, key: &Key) -> u64 {
        self.hasher.hash_one(key)
    }

    fn count_ip(&mut self, ip: [u8; 16], delta: i32) {
        let hash = self.hasher.hash_one(ip);
        let hasher = &self.hasher;
        match self
            .per_ip
            .entry(hash, |e| e.0 == ip, |e| hasher.hash_one(e.0))
        {
            hashbrown::hash_table::Entry::Occupied(mut found) => {
                let count = &mut found.get_mut().1;
                *count = count.saturating_add_signed(delta);
                if *count == 0 {
                    found.remove();
                }
            }
            hashbrown::hash_table::Entry::Vacant(place) => {
                debug_assert!(delta > 0, "an address no peer has lost a peer");
                if delta > 0 {
                    place.insert((ip, delta.unsigned_abs()));
                }
            }
        }
    }
}

#[derive(Default)]
pub struct PeerSet {
    /// Seeders in `[0, seeders)`, leechers after.
    entries: Vec<Entry>,
    seeders: usize,
    /// No peer was last seen before this (a lower bound, exact after each expiry scan).
    oldest: u32,
    index: Option<Box<Index>>,
}

impl std::fmt::Debug for PeerSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PeerSet({} seeders, {} leechers)",
            self.seeders,
            self.leechers()
        )
    }
}

impl PeerSet {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn seeders(&self) -> usize {
        self.seeders
    }

    pub fn leechers(&self) -> usize {
        self.entries.len() - self.seeders
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    pub fn get_mut(&mut self, at: usize) -> Option<&mut Entry> {
        self.entries.get_mut(at)
    }

    /// Where the peer with `key` is.
    pub fn find(&self, key: &Key) -> Option<usize> {
        match &self.index {
            Some(index) => index
                .table
                .find(index.hash(key), |&at| {
                    self.entries.get(at as usize).is_some_and(|e| e.same(key))
                })
                .map(|&at| at as usize),
            None => self.entries.iter().position(|e| e.same(key)),
        }
    }

    /// How many peers `ip` has here.
    pub fn count_ip(&self, ip: IpAddr) -> usize {
        let ip = mapped(ip);
        match &self.index {
            Some(index) => index
                .per_ip
                .find(index.hasher.hash_one(ip), |e| e.0 == ip)
                .map_or(0, |e| e.1 as usize),
            None => self.entries.iter().filter(|e| e.ip == ip).count(),
        }
    }

    /// Puts the set back in order after a panic may have left it half-way through a change: the
    /// seeders first, the count, the oldest bound and the index all rebuilt from the entries.
    /// Returns whether anything was out of order.
    pub fn repair(&mut self) -> bool {
        let before = (self.seeders, self.oldest);
        let had_index = self.index.is_some();
        let consistent = self.is_consistent();
        self.entries.sort_by_key(|e| !e.is_seeder());
        self.seeders = self.entries.iter().filter(|e| e.is_seeder()).count();
        self.oldest = self.entries.iter().map(|e| e.last_seen).min().unwrap_or(0);
        self.index = None;
        if self.entries.len() > INDEX_FROM || had_index {
            self.build_index();
        }
        !consistent || before != (self.seeders, self.oldest)
    }

    /// Every entry is where the index says and on the right side of the partition.
    fn is_consistent(&self) -> bool {
        self.seeders <= self.entries.len()
            && self.entries.iter().enumerate().all(|(at, e)| {
                e.is_seeder() == (at < self.seeders) && self.find(&e.key()) == Some(at)
            })
    }

    /// Adds a peer (not already present) with `left` bytes to go; returns where it is.
    pub fn insert(&mut self, mut entry: Entry, left: u64) -> usize {
        entry.left = left;
        let seeder = entry.is_seeder();
        if self.entries.is_empty() || entry.last_seen < self.oldest {
            self.oldest = entry.last_seen;
        }
        if self.entries.len() == self.entries.capacity() {
            // Small swarms grow a little at a time: most torrents have few peers.
            let extra = (self.entries.len() / 2).clamp(2, 4096);
            self.entries.reserve_exact(extra);
        }
        self.entries.push(entry);
        let at = self.entries.len() - 1;
        self.index_insert(at);
        if self.entries.len() > INDEX_FROM && self.index.is_none() {
            self.build_index();
        }
        let at = if seeder {
            self.swap(at, self.seeders);
            self.seeders += 1;
            self.seeders - 1
        } else {
            at
        };
        debug_assert!(self.seeders <= self.entries.len());
        debug_assert_eq!(self.find(&self.entries[at].key()), Some(at));
        at
    }

    /// Changes a peer's `left`, moving it between seeders and leechers; returns where it is now.
    pub fn set_left(&mut self, at: usize, left: u64) -> usize {
        debug_assert!(at < self.entries.len() && self.seeders <= self.entries.len());
        let was_seeder = at < self.seeders;
        self.entries[at].left = left;
        match (was_seeder, left == 0) {
            (false, true) => {
                self.swap(at, self.seeders);
                self.seeders += 1;
                self.seeders - 1
            }
            (true, false) => {
                self.seeders -= 1;
                self.swap(at, self.seeders);
                self.seeders
            }
            _ => at,
        }
    }

    /// Removes the peer at `at`.
    pub fn remove(&mut self, at: usize) -> Entry {
        let mut at = at;
        if at < self.seeders {
            // Move it to the last seeder place, then make that place a leecher place.
            self.seeders -= 1;
            self.swap(at, self.seeders);
            at = self.seeders;
        }
        let last = self.entries.len() - 1;
        self.swap(at, last);
        self.index_remove(last);
        let entry = self.entries.pop().expect("at was a valid position");
        if self.entries.capacity() > 2 * self.entries.len() + 8 {
            self.entries
                .shrink_to(self.entries.len() + self.entries.len() / 2 + 2);
        }
        if self.entries.len() <= INDEX_FROM / 2 {
            self.index = None;
        }
        debug_assert!(self.seeders <= self.entries.len());
        entry
    }

    /// Drops every peer last seen at or before `cutoff_unix`. Free unless a peer can have
    /// expired (the oldest bound says so); then one pass finds them and renews the bound.
    pub fn expire(&mut self, cutoff_unix: u64) -> usize {
        if self.entries.is_empty() || u64::from(self.oldest) > cutoff_unix {
            return 0;
        }
        let before = self.entries.len();
        let mut at = 0;
        while at < self.entries.len() {
            if self.entries[at].last_seen_unix() <= cutoff_unix {
                // Whatever moves into `at` has not been looked at yet.
                self.remove(at);
            } else {
                at += 1;
            }
        }
        self.oldest = self.entries.iter().map(|e| e.last_seen).min().unwrap_or(0);
        before - self.entries.len()
    }

    /// Up to `want` peers other than the one at `exclude`, chosen at random in O(want): from a
    /// random start, a stride that is a prime not dividing the candidate count (so coprime with
    /// it) visits distinct candidates.
    #[cfg(test)]
    pub fn sample(
        &self,
        want: usize,
        exclude: Option<usize>,
        leechers_only: bool,
    ) -> Vec<AnnouncePeer> {
        let mut out = Vec::new();
        self.sample_into(want, exclude, leechers_only, Family::Any, &mut out);
        out
    }

    /// [`PeerSet::sample`] into `out` (cleared first, its room reused), of one address family.
    pub fn sample_into(
        &self,
        want: usize,
        exclude: Option<usize>,
        leechers_only: bool,
        family: Family,
        out: &mut Vec<AnnouncePeer>,
    ) {
        out.clear();
        let first = if leechers_only { self.seeders } else { 0 };
        let total = self.entries.len() - first;
        if want == 0 || total == 0 {
            return;
        }
        out.reserve(want.min(total));
        let mut rng = rand::thread_rng();
        let start = rng.gen_range(0..total);
        let prime = STRIDES[rng.gen_range(0..STRIDES.len())];
        let stride = if total.is_multiple_of(prime) {
            1
        } else {
            prime % total
        };
        let mut i = start;
        for _ in 0..total {
            let at = first + i;
            if Some(at) != exclude {
                let entry = &self.entries[at];
                let addr = entry.addr();
                if family.holds(&addr) {
                    out.push(AnnouncePeer {
                        peer_id: entry.peer_id,
                        addr,
                    });
                    if out.len() == want {
                        break;
                    }
                }
            }
            i += stride;
            if i >= total {
                i -= total;
            }
        }
    }

    /// Swaps two positions, keeping the index right. The index entry of `a` is parked on a
    /// sentinel first, so no two entries ever hold the same position (a lookup by position could
    /// otherwise pick the wrong key's entry).
    fn swap(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        if let Some(index) = &mut self.index {
            const PARKED: u32 = u32::MAX;
            let hash_a = index.hash(&self.entries[a].key());
            let hash_b = index.hash(&self.entries[b].key());
            let parked = index
                .table
                .find_mut(hash_a, |&at| at as usize == a)
                .map(|slot| *slot = PARKED);
            let moved = index
                .table
                .find_mut(hash_b, |&at| at as usize == b)
                .map(|slot| *slot = a as u32);
            let placed = index
                .table
                .find_mut(hash_a, |&at| at == PARKED)
                .map(|slot| *slot = b as u32);
            debug_assert!(
                parked.is_some() && moved.is_some() && placed.is_some(),
                "both positions are in the index"
            );
        }
        self.entries.swap(a, b);
    }

    fn index_insert(&mut self, at: usize) {
        if let Some(index) = &mut self.index {
            index.count_ip(self.entries[at].ip, 1);
            let hash = index.hash(&self.entries[at].key());
            let (entries, hasher) = (&self.entries, &index.hasher);
            index.table.insert_unique(hash, at as u32, |&i| {
                hasher.hash_one(entries[i as usize].key())
            });
        }
    }

    fn index_remove(&mut self, at: usize) {
        if let Some(index) = &mut self.index {
            index.count_ip(self.entries[at].ip, -1);
            let hash = index.hash(&self.entries[at].key());
            if let Ok(found) = index.table.find_entry(hash, |&i| i as usize == at) {
                found.remove();
            }
        }
    }

    fn build_index(&mut self) {
        let mut index = Index {
            table: HashTable::with_capacity(self.entries.len() * 2),
            per_ip: HashTable::new(),
            hasher: RandomState::new(),
        };
        for (at, entry) in self.entries.iter().enumerate() {
            index.count_ip(entry.ip, 1);
            let hash = index.hash(&entry.key());
            let (entries, hasher) = (&self.entries, &index.hasher);
            index.table.insert_unique(hash, at as u32, |&i| {
                hasher.hash_one(entries[i as usize].key())
            });
        }
        self.index = Some(Box::new(index));
    }
}

#[cfg(test)]
impl PeerSet {
    /// What a panic in the middle of [`PeerSet::swap`] leaves: one index entry parked, the
    /// partition off by one.
    pub fn break_half_way_for_test(&mut self) {
        let index = self
            .index
            .as_mut()
            .expect("a set big enough to have an index");
        let hash = index.hash(&self.entries[0].key());
        *index.table.find_mut(hash, |&at| at == 0).unwrap() = u32::MAX;
        self.seeders = self.seeders.saturating_sub(1);
    }
}

/// Primes to step through a swarm with; one that does not divide the swarm size is coprime with it.
/// They are small so that a sample reads memory in short, regular steps the CPU prefetches: in a
/// large swarm, waiting for memory is most of what sampling costs.
const STRIDES: [usize; 5] = [1, 2, 3, 5, 7];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn addr(n: u32) -> SocketAddr {
        SocketAddr::from(([10, (n >> 16) as u8, (n >> 8) as u8, n as u8], 6881))
    }

    fn entry(n: u32, seen: u64) -> Entry {
        Entry::new(addr(n), 0, PeerId([n as u8; 20]), seen)
    }

    /// Every peer can be found where the index says, the seeders come first, and the per-address
    /// counts are right.
    fn check(set: &PeerSet) {
        for (at, e) in set.entries.iter().enumerate() {
            assert_eq!(set.find(&e.key()), Some(at));
            assert_eq!(e.is_seeder(), at < set.seeders, "partition at {at}");
            let ip = e.addr().ip();
            let by_scan = set.entries.iter().filter(|o| o.addr().ip() == ip).count();
            assert_eq!(set.count_ip(ip), by_scan, "count of {ip}");
        }
        assert!(set.is_consistent());
    }

    #[test]
    fn entries_are_compact() {
        assert_eq!(std::mem::size_of::<Entry>(), 72);
    }

    #[test]
    fn addresses_round_trip_v4_and_v6() {
        let v4: SocketAddr = "1.2.3.4:5".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:6".parse().unwrap();
        assert_eq!(Entry::new(v4, 0, PeerId([0; 20]), 0).addr(), v4);
        assert_eq!(Entry::new(v6, 0, PeerId([0; 20]), 0).addr(), v6);
    }

    #[test]
    fn inserts_moves_and_removals_keep_the_set_consistent_small_and_large() {
        for size in [5u32, 200] {
            let mut set = PeerSet::default();
            for n in 0..size {
                set.insert(entry(n, 100), u64::from(n % 3));
                check(&set);
            }
            assert_eq!(
                (set.seeders(), set.leechers()),
                (
                    (size as usize).div_ceil(3),
                    size as usize - (size as usize).div_ceil(3)
                )
            );
            for n in (0..size).step_by(2) {
                let at = set.find(&Key::new(addr(n), 0)).unwrap();
                set.set_left(at, if n % 4 == 0 { 7 } else { 0 });
                check(&set);
            }
            for n in (0..size).step_by(3) {
                let at = set.find(&Key::new(addr(n), 0)).unwrap();
                set.remove(at);
                check(&set);
                assert_eq!(set.find(&Key::new(addr(n), 0)), None);
            }
        }
    }

    #[test]
    fn many_random_operations_keep_the_index_right() {
        // Small xorshift so the sequence is repeatable.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut set = PeerSet::default();
        for step in 0..200_000 {
            let n = (next() % 120) as u32;
            let found = set.find(&Key::new(addr(n), 0));
            match (next() % 3, found) {
                (0, None) => {
                    set.insert(entry(n, 1), next() % 2);
                }
                (1, Some(at)) => {
                    set.remove(at);
                }
                (_, Some(at)) => {
                    set.set_left(at, next() % 2);
                }
                _ => {}
            }
            if step % 1000 == 0 {
                check(&set);
            }
        }
        check(&set);
    }

    #[test]
    fn repair_restores_a_set_broken_half_way() {
        let mut set = PeerSet::default();
        for n in 0..40 {
            set.insert(entry(n, 100), u64::from(n % 2));
        }
        assert!(!set.repair(), "nothing to mend in a consistent set");
        set.break_half_way_for_test();
        assert!(!set.is_consistent());
        assert!(set.repair());
        check(&set);
        assert_eq!((set.seeders(), set.leechers()), (20, 20));
    }

    #[test]
    fn peers_of_one_address_are_counted_small_and_large() {
        let mut set = PeerSet::default();
        let at = |port: u16| SocketAddr::from(([10, 0, 0, 1], port));
        for port in 1..=30 {
            set.insert(Entry::new(at(port), 0, PeerId([0; 20]), 0), 1);
            assert_eq!(set.count_ip(at(1).ip()), usize::from(port));
        }
        set.insert(entry(99, 0), 1);
        for port in 1..=30 {
            let found = set.find(&Key::new(at(port), 0)).unwrap();
            set.remove(found);
            check(&set);
        }
        assert_eq!(set.count_ip(at(1).ip()), 0);
    }

    #[test]
    fn the_same_address_with_another_user_is_another_peer() {
        let mut set = PeerSet::default();
        set.insert(Entry::new(addr(1), 7, PeerId([1; 20]), 0), 1);
        assert_eq!(set.find(&Key::new(addr(1), 8)), None);
        assert_eq!(set.find(&Key::new(addr(1), 7)), Some(0));
    }

    #[test]
    fn expiry_is_free_until_the_oldest_peer_can_be_expired() {
        let mut set = PeerSet::default();
        for n in 0..50 {
            set.insert(entry(n, 1000 + u64::from(n)), u64::from(n % 2));
        }
        assert_eq!(set.expire(999), 0);
        assert_eq!(set.expire(1009), 10);
        check(&set);
        assert_eq!(set.len(), 40);
        assert_eq!(set.oldest, 1010);
        assert_eq!(set.expire(5000), 40);
        assert!(set.is_empty());
    }

    #[test]
    fn samples_are_distinct_exclude_one_and_can_be_leechers_only() {
        let mut set = PeerSet::default();
        for n in 0..100 {
            set.insert(entry(n, 0), u64::from(n % 4 != 0));
        }
        let all = set.sample(1000, Some(3), false);
        assert_eq!(all.len(), 99);
        let distinct: HashSet<_> = all.iter().map(|p| p.addr).collect();
        assert_eq!(distinct.len(), 99);
        assert!(!distinct.contains(&set.entries[3].addr()));
        let leechers = set.sample(1000, None, true);
        assert_eq!(leechers.len(), 75);
        assert_eq!(set.sample(5, None, false).len(), 5);
    }
}
