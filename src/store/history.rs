//! Peers over time: a torrent's (and the tracker's) seeders, leechers and completions, sampled
//! every 15 minutes. Two fixed rings, so the memory is known in advance:
//!
//! - fine: the last 24 hours, one point every 15 minutes (96 points of seeders and leechers);
//! - coarse: the last 24 days, one point every 6 hours (96 points: the most seeders and leechers
//!   seen in those 6 hours, and the completions in them).
//!
//! A torrent's counts are `u16` (saturating at 65,534: a small tracker's swarms are far smaller),
//! which puts one torrent's history at 968 bytes; the tracker's totals use `u32`. A torrent with no
//! peers since the tracker started has no history at all. Slots nobody sampled (the tracker was
//! down) are "unknown", not zero. Pure: the time is a parameter.

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};

/// Seconds between fine points.
pub const FINE_STEP: u64 = 15 * 60;
pub const FINE_POINTS: usize = 96;
/// Seconds between coarse points.
pub const COARSE_STEP: u64 = 6 * 60 * 60;
pub const COARSE_POINTS: usize = 96;

/// A count as a history keeps it.
pub trait Count: Copy + Default + PartialEq + std::fmt::Debug {
    /// A slot that was never sampled.
    const UNKNOWN: Self;
    const BYTES: usize;
    /// `n`, saturating below [`Count::UNKNOWN`].
    fn of(n: u64) -> Self;
    fn get(self) -> u64;
    fn write(self, out: &mut Vec<u8>);
    fn read(bytes: &[u8]) -> Self;
}

impl Count for u16 {
    const UNKNOWN: u16 = u16::MAX;
    const BYTES: usize = 2;
    fn of(n: u64) -> u16 {
        n.min(u64::from(u16::MAX - 1)) as u16
    }
    fn get(self) -> u64 {
        u64::from(self)
    }
    fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn read(bytes: &[u8]) -> u16 {
        u16::from_le_bytes([bytes[0], bytes[1]])
    }
}

impl Count for u32 {
    const UNKNOWN: u32 = u32::MAX;
    const BYTES: usize = 4;
    fn of(n: u64) -> u32 {
        n.min(u64::from(u32::MAX - 1)) as u32
    }
    fn get(self) -> u64 {
        u64::from(self)
    }
    fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn read(bytes: &[u8]) -> u32 {
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point<C> {
    seeders: C,
    leechers: C,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CoarsePoint<C> {
    seeders: C,
    leechers: C,
    completed: C,
}

impl<C: Count> Point<C> {
    const UNKNOWN: Point<C> = Point {
        seeders: C::UNKNOWN,
        leechers: C::UNKNOWN,
    };
}

impl<C: Count> CoarsePoint<C> {
    const UNKNOWN: CoarsePoint<C> = CoarsePoint {
        seeders: C::UNKNOWN,
        leechers: C::UNKNOWN,
        completed: C::UNKNOWN,
    };
}

/// What a history gets at each sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    pub seeders: u64,
    pub leechers: u64,
    /// Completions so far (a running total; the history keeps the difference per coarse point).
    pub completions: u64,
}

/// One torrent's (or the tracker's) history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History<C: Count = u16> {
    /// Slot (Unix seconds / [`FINE_STEP`]) of the newest fine point; 0: none yet.
    fine_slot: u32,
    fine: [Point<C>; FINE_POINTS],
    /// Slot (Unix seconds / [`COARSE_STEP`]) of the newest coarse point; 0: none yet.
    coarse_slot: u32,
    coarse: [CoarsePoint<C>; COARSE_POINTS],
    /// The running total of completions when the newest coarse slot began.
    completions_base: u64,
}

impl<C: Count> Default for History<C> {
    fn default() -> History<C> {
        History {
            fine_slot: 0,
            fine: [Point::UNKNOWN; FINE_POINTS],
            coarse_slot: 0,
            coarse: [CoarsePoint::UNKNOWN; COARSE_POINTS],
            completions_base: 0,
        }
    }
}

impl<C: Count> History<C> {
    /// Records the counts at `now_unix`: the fine point of its slot (a later sample in the same
    /// slot replaces it), and the coarse point of its slot (maxima, completions since it began).
    pub fn record(&mut self, now_unix: u64, sample: Sample) {
        let slot = (now_unix / FINE_STEP) as u32;
        if slot < self.fine_slot {
            return;
        }
        // Slots skipped since the last sample are unknown.
        let gap = slot - self.fine_slot;
        if self.fine_slot == 0 || gap as usize >= FINE_POINTS {
            self.fine = [Point::UNKNOWN; FINE_POINTS];
        } else {
            for n in 1..gap {
                self.fine[((self.fine_slot + n) as usize) % FINE_POINTS] = Point::UNKNOWN;
            }
        }
        self.fine_slot = slot;
        self.fine[slot as usize % FINE_POINTS] = Point {
            seeders: C::of(sample.seeders),
            leechers: C::of(sample.leechers),
        };

        let coarse = (now_unix / COARSE_STEP) as u32;
        if coarse != self.coarse_slot {
            let gap = coarse.saturating_sub(self.coarse_slot);
            if self.coarse_slot == 0 || gap as usize >= COARSE_POINTS {
                self.coarse = [CoarsePoint::UNKNOWN; COARSE_POINTS];
            } else {
                for n in 1..gap {
                    self.coarse[((self.coarse_slot + n) as usize) % COARSE_POINTS] =
                        CoarsePoint::UNKNOWN;
                }
            }
            if self.coarse_slot == 0 || coarse < self.coarse_slot {
                self.completions_base = sample.completions;
            } else {
                // The completions of the slot that just ended are final; this one starts at
                // the running total now.
                self.completions_base = sample.completions.min(
                    self.completions_base
                        + self.coarse[self.coarse_slot as usize % COARSE_POINTS]
                            .completed
                            .get_known(),
                );
            }
            self.coarse_slot = coarse;
            self.coarse[coarse as usize % COARSE_POINTS] = CoarsePoint {
                seeders: C::of(0),
                leechers: C::of(0),
                completed: C::of(0),
            };
        }
        let point = &mut self.coarse[coarse as usize % COARSE_POINTS];
        point.seeders = C::of(point.seeders.get().max(sample.seeders));
        point.leechers = C::of(point.leechers.get().max(sample.leechers));
        point.completed = C::of(sample.completions.saturating_sub(self.completions_base));
    }

    /// The points as JSON for a plot: `fine` and `coarse`, each `{"step": seconds, "points":
    /// [[unix, seeders, leechers(, completed)], …]}` oldest first, unknown slots left out.
    pub fn to_json(&self) -> Value {
        let mut fine = Vec::new();
        if self.fine_slot > 0 {
            let first = self.fine_slot.saturating_sub(FINE_POINTS as u32 - 1);
            for slot in first..=self.fine_slot {
                let p = self.fine[slot as usize % FINE_POINTS];
                if p != Point::UNKNOWN {
                    fine.push(json!([
                        u64::from(slot) * FINE_STEP,
                        p.seeders.get(),
                        p.leechers.get()
                    ]));
                }
            }
        }
        let mut coarse = Vec::new();
        if self.coarse_slot > 0 {
            let first = self.coarse_slot.saturating_sub(COARSE_POINTS as u32 - 1);
            for slot in first..=self.coarse_slot {
                let p = self.coarse[slot as usize % COARSE_POINTS];
                if p != CoarsePoint::UNKNOWN {
                    coarse.push(json!([
                        u64::from(slot) * COARSE_STEP,
                        p.seeders.get(),
                        p.leechers.get(),
                        p.completed.get()
                    ]));
                }
            }
        }
        json!({
            "fine": { "step": FINE_STEP, "points": fine },
            "coarse": { "step": COARSE_STEP, "points": coarse },
        })
    }

    /// The history as bytes for the state file: the slots, then the points from the oldest
    /// known one to the newest, each count as a LEB128 varint of count + 1 (0: unknown). A young
    /// history is a few bytes, a full one of small swarms about 500.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        varint(&mut out, u64::from(self.fine_slot));
        varint(&mut out, u64::from(self.coarse_slot));
        varint(&mut out, self.completions_base);
        let fine = known_span(self.fine_slot, &self.fine, |p| *p == Point::UNKNOWN);
        varint(&mut out, fine as u64);
        for slot in window(self.fine_slot, fine) {
            let p = self.fine[slot as usize % FINE_POINTS];
            count(&mut out, p.seeders);
            count(&mut out, p.leechers);
        }
        let coarse = known_span(self.coarse_slot, &self.coarse, |p| {
            *p == CoarsePoint::UNKNOWN
        });
        varint(&mut out, coarse as u64);
        for slot in window(self.coarse_slot, coarse) {
            let p = self.coarse[slot as usize % COARSE_POINTS];
            count(&mut out, p.seeders);
            count(&mut out, p.leechers);
            count(&mut out, p.completed);
        }
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<History<C>> {
        let mut input = bytes;
        let mut history = History {
            fine_slot: u32::try_from(read_varint(&mut input)?).ok()?,
            coarse_slot: u32::try_from(read_varint(&mut input)?).ok()?,
            completions_base: read_varint(&mut input)?,
            ..History::default()
        };
        let fine = usize::try_from(read_varint(&mut input)?).ok()?;
        if fine > FINE_POINTS || fine as u64 > u64::from(history.fine_slot) + 1 {
            return None;
        }
        for slot in window(history.fine_slot, fine) {
            history.fine[slot as usize % FINE_POINTS] = Point {
                seeders: read_count(&mut input)?,
                leechers: read_count(&mut input)?,
            };
        }
        let coarse = usize::try_from(read_varint(&mut input)?).ok()?;
        if coarse > COARSE_POINTS || coarse as u64 > u64::from(history.coarse_slot) + 1 {
            return None;
        }
        for slot in window(history.coarse_slot, coarse) {
            history.coarse[slot as usize % COARSE_POINTS] = CoarsePoint {
                seeders: read_count(&mut input)?,
                leechers: read_count(&mut input)?,
                completed: read_count(&mut input)?,
            };
        }
        input.is_empty().then_some(history)
    }
}

/// How many slots, back from `newest`, reach the oldest known point of a ring.
fn known_span<P>(newest: u32, ring: &[P], unknown: impl Fn(&P) -> bool) -> usize {
    if newest == 0 {
        return 0;
    }
    let len = ring.len().min(newest as usize + 1);
    (0..len)
        .rev()
        .find(|&back| !unknown(&ring[(newest as usize - back) % ring.len()]))
        .map_or(0, |back| back + 1)
}

/// The `span` slots up to and including `newest`, oldest first.
fn window(newest: u32, span: usize) -> std::ops::RangeInclusive<u32> {
    (newest + 1 - span as u32)..=newest
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn read_varint(input: &mut &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        n |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte < 0x80 {
            return Some(n);
        }
    }
    None
}

/// A count as a varint of count + 1, an unknown one as 0.
fn count<C: Count>(out: &mut Vec<u8>, c: C) {
    varint(out, if c == C::UNKNOWN { 0 } else { c.get() + 1 });
}

fn read_count<C: Count>(input: &mut &[u8]) -> Option<C> {
    match read_varint(input)? {
        0 => Some(C::UNKNOWN),
        n => Some(C::of(n - 1)),
    }
}

trait Known {
    fn get_known(self) -> u64;
}

impl<C: Count> Known for C {
    /// The count, with an unknown one as 0.
    fn get_known(self) -> u64 {
        if self == C::UNKNOWN {
            0
        } else {
            self.get()
        }
    }
}

/// In the state file: base64 of its known points as varints (`History::to_bytes`).
impl<C: Count> Serialize for History<C> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(self.to_bytes()))
    }
}

impl<'de, C: Count> Deserialize<'de> for History<C> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<History<C>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .ok()
            .and_then(|bytes| History::from_bytes(&bytes))
            .ok_or_else(|| serde::de::Error::custom("history is not a saved history"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY0: u64 = 1_700_000_000 / COARSE_STEP * COARSE_STEP;

    fn sample(seeders: u64, leechers: u64, completions: u64) -> Sample {
        Sample {
            seeders,
            leechers,
            completions,
        }
    }

    #[test]
    fn a_torrents_history_fits_in_a_kilobyte() {
        assert!(std::mem::size_of::<History<u16>>() <= 1024);
        assert_eq!(std::mem::size_of::<History<u16>>(), 976);
    }

    #[test]
    fn fine_points_are_kept_for_a_day_and_gaps_are_unknown() {
        let mut h = History::<u16>::default();
        h.record(DAY0, sample(1, 2, 0));
        h.record(DAY0 + 10, sample(3, 4, 0));
        h.record(DAY0 + 3 * FINE_STEP, sample(5, 6, 0));
        let json = h.to_json();
        let fine = json["fine"]["points"].as_array().unwrap();
        assert_eq!(
            fine,
            &vec![json!([DAY0, 3, 4]), json!([DAY0 + 3 * FINE_STEP, 5, 6])],
            "one point a slot (the latest), nothing for the slots not sampled"
        );
        h.record(DAY0 + 200 * FINE_STEP, sample(7, 8, 0));
        let fine = h.to_json()["fine"]["points"].as_array().unwrap().clone();
        assert_eq!(
            fine,
            vec![json!([DAY0 + 200 * FINE_STEP, 7, 8])],
            "a day later"
        );
    }

    #[test]
    fn coarse_points_keep_maxima_and_completions_per_six_hours() {
        let mut h = History::<u16>::default();
        h.record(DAY0, sample(1, 9, 10));
        h.record(DAY0 + FINE_STEP, sample(4, 2, 12));
        h.record(DAY0 + COARSE_STEP, sample(2, 2, 15));
        h.record(DAY0 + COARSE_STEP + FINE_STEP, sample(1, 1, 16));
        let coarse = h.to_json()["coarse"]["points"].as_array().unwrap().clone();
        assert_eq!(
            coarse,
            vec![json!([DAY0, 4, 9, 2]), json!([DAY0 + COARSE_STEP, 2, 2, 4])]
        );
        assert_eq!(u16::of(1_000_000), u16::MAX - 1, "counts saturate");
    }

    #[test]
    fn a_history_survives_the_state_file() {
        let mut h = History::<u32>::default();
        h.record(DAY0, sample(100_000, 2, 3));
        let text = serde_json::to_string(&h).unwrap();
        let back: History<u32> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, h);
        assert!(serde_json::from_str::<History<u32>>("\"AAAA\"").is_err());
        assert!(text.len() < 40, "a young history is small: {text}");
        let mut full = History::<u16>::default();
        for n in 0..30 * 96 {
            full.record(DAY0 + n * FINE_STEP, sample(n % 7, n % 13, n / 50));
        }
        let text = serde_json::to_string(&full).unwrap();
        assert!(text.len() < 700, "{} bytes", text.len());
        assert_eq!(serde_json::from_str::<History<u16>>(&text).unwrap(), full);
    }
}
