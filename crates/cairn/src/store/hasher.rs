//! The hash function of hash tables: folded multiplies with per-table random seeds, every path for keys of up to
//! 32 bytes inlined into the lookup.
//!
//! Why not foldhash, which Cairn used before: foldhash hashes byte strings longer than 16 bytes in an out-of-line
//! function (`hash_bytes_long`, marked cold), so a lookup by a 24-byte key made two calls and spilled the hasher to
//! the stack. A lookup in a loop of random reads is bound by how many lookups fit in the CPU's window at once (their
//! cache misses overlap only then), so those ~40 instructions cost read throughput directly (ARCHITECTURE.md, issue
//! 3, has the figures). This hasher keeps the same construction (XOR the input into a seeded state, multiply 64x64 to
//! 128 bits and fold the halves together) and handles up to 32 bytes with straight-line code, which the compiler
//! reduces to a few loads and multiplies for a fixed-size key.
//!
//! It is a hash for in-memory tables only: nothing it produces is written to disk, and the seeds are drawn afresh for
//! every table, so the hash may change between versions. Like foldhash's fast variant it is not a keyed MAC: random
//! seeds make collisions unpredictable from outside, which is the defence a hash table needs.

use std::hash::{BuildHasher, Hasher};

/// Multiplies two words to 128 bits and folds the halves together: every output bit depends on most input bits.
#[inline(always)]
const fn fold(x: u64, y: u64) -> u64 {
    let full = (x as u128).wrapping_mul(y as u128);
    (full as u64) ^ ((full >> 64) as u64)
}

/// Reads 8 bytes at `at` (the caller has checked `at + 8 <= bytes.len()`).
#[inline(always)]
fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Reads 4 bytes at `at` (the caller has checked `at + 4 <= bytes.len()`).
#[inline(always)]
fn half(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0; 4];
    w.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(w) as u64
}

/// Builds the hashers of one table: three random seeds, drawn once per table each time a database opens (its
/// `TableDef`), shared by every store of that table in that database (both copies, reloads, write sets) and copied
/// into its handle, which hashes a key before it has found the table (`table.rs`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Seeds([u64; 3]);

impl Default for Seeds {
    fn default() -> Self {
        // foldhash's RandomState is seeded from the process's random source and a per-instance counter: hashing
        // three constants with one gives three unpredictable words.
        let random = foldhash::fast::RandomState::default();
        // An odd multiplier never maps a nonzero input to zero.
        Seeds([random.hash_one(1u8), random.hash_one(2u8) | 1, random.hash_one(3u8) | 1])
    }
}

impl BuildHasher for Seeds {
    type Hasher = KeyHasher;

    #[inline(always)]
    fn build_hasher(&self) -> KeyHasher {
        let [acc, k1, k2] = self.0;
        KeyHasher { acc, k1, k2 }
    }
}

/// Hashes one key (see the module docs). The seeds are copied in, so hashing reads no memory but the key.
pub(crate) struct KeyHasher {
    acc: u64,
    k1: u64,
    k2: u64,
}

impl KeyHasher {
    #[inline(always)]
    fn num(&mut self, x: u64) {
        self.acc = fold(self.acc ^ x, self.k1);
    }

    /// The two lanes' starting states for a byte string, from the (length-turned) state `acc`.
    #[inline(always)]
    fn lanes_from(&self, acc: u64) -> (u64, u64) {
        (acc, acc.rotate_left(32) ^ self.k2)
    }

    /// One step of the two lanes over four words of `bytes` (at the offsets `[a, a', b, b']`): each lane XORs one
    /// word into its state and one into its seed, then folds.
    #[inline(always)]
    fn lanes(&self, (a, b): (u64, u64), bytes: &[u8], [ia, ja, ib, jb]: [usize; 4]) -> (u64, u64) {
        (fold(a ^ word(bytes, ia), self.k1 ^ word(bytes, ja)), fold(b ^ word(bytes, ib), self.k2 ^ word(bytes, jb)))
    }

    /// More than 32 bytes: 32 at a time, then the last 32 (overlapping what came before).
    #[inline(never)]
    fn long(&self, acc: u64, bytes: &[u8]) -> u64 {
        let mut lanes = self.lanes_from(acc);
        let mut at = 0;
        while bytes.len() - at > 32 {
            lanes = self.lanes(lanes, bytes, [at, at + 16, at + 8, at + 24]);
            at += 32;
        }
        let end = bytes.len() - 32;
        let (a, b) = self.lanes(lanes, bytes, [end, end + 16, end + 8, end + 24]);
        a ^ b
    }
}

impl Hasher for KeyHasher {
    #[inline(always)]
    fn write(&mut self, bytes: &[u8]) {
        let len = bytes.len();
        // The length turns the state, so inputs that differ only in how many bytes the overlapping reads below
        // cover (say 9 bytes and 10 whose extra byte repeats) still hash apart.
        let acc = self.acc.rotate_right(len as u32);
        self.acc = match len {
            0 => fold(acc, self.k1),
            1..=3 => {
                let x = bytes[0] as u64 | (bytes[len / 2] as u64) << 8 | (bytes[len - 1] as u64) << 16;
                fold(acc ^ x, self.k1)
            }
            4..=8 => fold(acc ^ half(bytes, 0), self.k1 ^ half(bytes, len - 4)),
            9..=16 => fold(acc ^ word(bytes, 0), self.k1 ^ word(bytes, len - 8)),
            17..=32 => {
                let (a, b) = self.lanes(self.lanes_from(acc), bytes, [0, len - 16, 8, len - 8]);
                a ^ b
            }
            _ => self.long(acc, bytes),
        };
    }

    #[inline(always)]
    fn write_u8(&mut self, i: u8) {
        self.num(i as u64);
    }

    #[inline(always)]
    fn write_u16(&mut self, i: u16) {
        self.num(i as u64);
    }

    #[inline(always)]
    fn write_u32(&mut self, i: u32) {
        self.num(i as u64);
    }

    #[inline(always)]
    fn write_u64(&mut self, i: u64) {
        self.num(i);
    }

    #[inline(always)]
    fn write_u128(&mut self, i: u128) {
        self.acc = fold(self.acc ^ i as u64, self.k1 ^ (i >> 64) as u64);
    }

    #[inline(always)]
    fn write_usize(&mut self, i: usize) {
        self.num(i as u64);
    }

    #[inline(always)]
    fn finish(&self) -> u64 {
        // One more multiply so that the last input's bits reach the top bits, which hashbrown uses for its tags.
        fold(self.acc, self.k2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn equal_keys_hash_equal_and_tables_differ() {
        let s = Seeds::default();
        let t = s.clone();
        for len in 0..100 {
            let key: Vec<u8> = (0..len as u8).collect();
            assert_eq!(s.hash_one(&key), t.hash_one(&key), "a clone hashes as the original ({len} bytes)");
        }
        let other = Seeds::default();
        assert_ne!(s.hash_one("key"), other.hash_one("key"), "two tables draw different seeds");
    }

    /// Every byte of keys of every length up to 100 changes the hash, in the low bits (the bucket) and in the top
    /// 7 (hashbrown's tag): flipping any one bit of a key moves both for almost every key.
    #[test]
    fn every_input_bit_reaches_the_bucket_and_the_tag() {
        let s = Seeds::default();
        let mut key = [0u8; 100];
        for (i, b) in key.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(151).wrapping_add(7);
        }
        let mut total_low_same = 0;
        for len in 1..=100 {
            let base = s.hash_one(&key[..len]);
            let (mut low_same, mut tag_same, mut flips) = (0, 0, 0);
            for byte in 0..len {
                for bit in 0..8 {
                    let mut k = key;
                    k[byte] ^= 1 << bit;
                    let h = s.hash_one(&k[..len]);
                    assert_ne!(h, base, "flipping bit {bit} of byte {byte} of a {len}-byte key left the hash alone");
                    low_same += usize::from(h & 0xffff == base & 0xffff);
                    tag_same += usize::from(h >> 57 == base >> 57);
                    flips += 1;
                }
            }
            // By chance: 1 in 65536 for the low bits, 1 in 128 for the tag. A length's at most 800 flips expect 0.012
            // low-bit coincidences, so three or more happen by chance about once in 10^7 lengths, while a byte that
            // does not reach the low bits makes all eight of its flips coincide. (A bound of one coincidence per
            // 1,000 flips, before, failed about every other run: 40,400 flips in all expect 0.6 of them.)
            assert!(low_same <= 2, "{len} bytes: the low 16 bits stayed for {low_same} of {flips} flips");
            total_low_same += low_same;
            // The tag expects flips/128; one in 20 flips plus 5 holds by chance for all but about one run in 10^4,
            // and fails for a byte that does not reach the top bits (all eight of its flips coincide).
            assert!(tag_same <= flips / 20 + 5, "{len} bytes: the tag stayed for {tag_same} of {flips} flips");
        }
        // All lengths together expect 0.6; 7 or more by chance about once in 10^6 runs.
        assert!(total_low_same <= 6, "the low 16 bits stayed for {total_low_same} flips of all lengths");
    }

    /// Sequential integers and keys that differ only in length spread over buckets as random ones would.
    #[test]
    fn structured_keys_spread_over_buckets() {
        let s = Seeds::default();
        let buckets = 1 << 16;
        let distinct = |hashes: Vec<u64>| hashes.iter().map(|h| h & (buckets - 1)).collect::<HashSet<_>>().len();
        // 65536 keys into 65536 buckets fill about 1 - 1/e of them (63.2%) when the hash behaves randomly.
        let expect = (buckets as f64 * (1.0 - (-1.0f64).exp())) as usize;
        let near = |n: usize| n.abs_diff(expect) < expect / 50;
        let ints = distinct((0..buckets).map(|i| s.hash_one(i)).collect());
        assert!(near(ints), "sequential u64 keys filled {ints} of {buckets} buckets, expected about {expect}");
        let pairs = distinct((0..buckets).map(|i| s.hash_one((i as u32 & 0xff, i as u32 >> 8))).collect());
        assert!(near(pairs), "(u32, u32) keys filled {pairs} of {buckets} buckets, expected about {expect}");
        let arrays = distinct(
            (0..buckets)
                .map(|i| {
                    s.hash_one({
                        let mut k = [0u8; 24];
                        k[..8].copy_from_slice(&i.to_le_bytes());
                        k
                    })
                })
                .collect(),
        );
        assert!(near(arrays), "24-byte keys counting in their first word filled {arrays} of {buckets} buckets");
        let strings = distinct((0..buckets).map(|i| s.hash_one(format!("user-{i}"))).collect());
        assert!(near(strings), "string keys filled {strings} of {buckets} buckets, expected about {expect}");
        let zeros: HashSet<u64> = (0..200).map(|n| s.hash_one(vec![0u8; n])).collect();
        assert_eq!(zeros.len(), 200, "runs of zero bytes of different lengths collided");
    }
}
