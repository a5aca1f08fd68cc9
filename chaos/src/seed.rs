//! The seed of a fault run. Everything random a suite decides (which replica a request
//! goes to, when a fault fires) is drawn from RNGs derived from it, so a failing run can
//! be replayed with `GANTRY_CHAOS_SEED=<seed>`. Thread scheduling is not replayed: the
//! same seed gives the same decisions, not necessarily the same interleaving.

use anyhow::Context as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;

/// Environment variable that fixes the seed.
pub const SEED_ENV: &str = "GANTRY_CHAOS_SEED";

/// The seed from [`SEED_ENV`], or a fresh one. Always printed on stderr
/// (`chaos seed: N`), so that the output of a failed run says how to replay it.
pub fn chaos_seed() -> anyhow::Result<u64> {
    let seed = match std::env::var(SEED_ENV) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().parse::<u64>().with_context(|| format!("{SEED_ENV}={v:?} is not an unsigned 64-bit integer"))?
        }
        _ => rand::random::<u64>(),
    };
    eprintln!("chaos seed: {seed} (replay with {SEED_ENV}={seed})");
    Ok(seed)
}

/// An independent RNG for one consumer (a client task, the fault schedule), derived
/// from the run's seed and a per-consumer stream number.
pub fn rng(seed: u64, stream: u64) -> StdRng {
    // SplitMix64-style mixing so that streams 0, 1, 2 of nearby seeds do not overlap.
    let mut z = seed ^ stream.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(z ^ (z >> 31))
}

#[cfg(test)]
mod tests {
    use rand::Rng as _;

    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let draw = |seed, stream| -> Vec<u32> {
            let mut r = rng(seed, stream);
            (0..8).map(|_| r.random()).collect()
        };
        assert_eq!(draw(7, 1), draw(7, 1));
        assert_ne!(draw(7, 1), draw(7, 2));
        assert_ne!(draw(7, 1), draw(8, 1));
    }
}
