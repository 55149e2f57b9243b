//! Deterministic mutations for the stable smoke test: a tiny PRNG and the classic byte-level
//! moves (bit flips, interesting bytes, truncation, deletion, duplication, splicing), plus
//! token splices for text formats. Not a fuzzer: a fixed, repeatable sample around the seeds
//! so CI catches a regression in seconds; libFuzzer (`fuzz/`) does the real search.

/// xorshift64*: fast, deterministic, good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-enough in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// Bytes that sit on boundaries: erased values, sign bits, CBOR/base64/line delimiters.
const INTERESTING: [u8; 12] = [
    0x00, 0xff, 0x7f, 0x80, 0x01, 0x0a, 0x0d, 0x04, 0x06, 0x09, 0x14, 0x1f,
];

/// Text tokens that byte flips rarely build: numbers at and past the limits of u32/u64/f64,
/// YAML structure, and Kconfig/HEX syntax.
const TOKENS: [&str; 18] = [
    "18446744073709551615",
    "4294967295",
    "4294967296",
    "0xffffffff",
    "0x100000000",
    "-1",
    "0",
    "1e300",
    "\n",
    ": ",
    "\n  - ",
    "{",
    "[",
    "&a ",
    "*a",
    "=0x",
    ":10000000",
    "\"",
];

/// One mutant of `input`; `other` is spliced from (another seed of the same target).
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8], text: bool) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = out.len();
        match rng.below(if text { 9 } else { 8 }) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => out.truncate(rng.below(len + 1)),
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                out.drain(at..at + n);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                let copy = out[at..at + n].to_vec();
                let to = rng.below(len + 1);
                out.splice(to..to, copy);
            }
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                let n = 1 + rng.below((other.len() - from).min(256));
                let to = rng.below(len + 1);
                out.splice(to..to, other[from..from + n].iter().copied());
            }
            6 if len >= 4 => {
                // A little-endian word set to an edge value (lengths, offsets, sizes).
                let at = rng.below(len - 3);
                let word: u32 = [0, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX][rng.below(5)];
                out[at..at + 4].copy_from_slice(&word.to_le_bytes());
            }
            7 => {
                let to = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let fill: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                out.splice(to..to, fill);
            }
            8 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                let to = rng.below(len + 1);
                // Replace a run of digits when we land on one, else insert.
                let end = out[to..]
                    .iter()
                    .position(|b| !b.is_ascii_alphanumeric())
                    .map_or(len, |p| to + p);
                out.splice(to..end, token.iter().copied());
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_mutants() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            assert_eq!(
                mutate(&mut a, b"image list", b"other", true),
                mutate(&mut b, b"image list", b"other", true)
            );
        }
    }

    #[test]
    fn mutating_nothing_never_panics() {
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            let _ = mutate(&mut r, b"", b"", true);
        }
    }
}
