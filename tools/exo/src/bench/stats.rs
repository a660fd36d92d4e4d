//! Order statistics of a benchmark point's repeats: min, median, p99 and max.
//!
//! Definitions (nearest rank, so every figure is one of the measured values and the same
//! samples always give the same figures): sort the `n` samples ascending and number them
//! from 1; the `q`-quantile is sample number `ceil(q * n)` (at least 1). So the median is
//! the lower median (sample `ceil(n / 2)`), and p99 is sample `ceil(0.99 n)`: the maximum
//! whenever `n <= 100`, which is what 99 % of fewer than 100 samples can honestly say.

use serde::Serialize;

/// Min, median, p99 and max of a set of samples, in the samples' unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Smallest.
    pub min: u64,
    /// Lower median (nearest rank 50 %).
    pub median: u64,
    /// Nearest rank 99 %.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl Stats {
    /// The statistics of `samples`; `None` if there are none.
    pub fn of(samples: &[u64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        Some(Self {
            min: sorted[0],
            median: nearest_rank(&sorted, 50),
            p99: nearest_rank(&sorted, 99),
            max: sorted[sorted.len() - 1],
        })
    }

    /// Every figure converted by `convert` (ticks to instructions).
    pub fn map(self, convert: impl Fn(u64) -> u64) -> Self {
        Self {
            min: convert(self.min),
            median: convert(self.median),
            p99: convert(self.p99),
            max: convert(self.max),
        }
    }
}

/// Sample number `ceil(percent / 100 * n)` (from 1) of `sorted`, which is not empty.
fn nearest_rank(sorted: &[u64], percent: usize) -> u64 {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_is_every_statistic() {
        let s = Stats::of(&[7]).unwrap();
        assert_eq!((s.min, s.median, s.p99, s.max), (7, 7, 7, 7));
    }

    #[test]
    fn small_samples_take_the_lower_median_and_the_max_as_p99() {
        let s = Stats::of(&[40, 10, 30, 20]).unwrap();
        assert_eq!((s.min, s.median, s.p99, s.max), (10, 20, 40, 40));
        let s = Stats::of(&[5, 1, 3]).unwrap();
        assert_eq!((s.median, s.p99), (3, 5));
    }

    #[test]
    fn p99_of_two_hundred_samples_skips_the_two_largest() {
        let samples: Vec<u64> = (1..=200).rev().collect();
        let s = Stats::of(&samples).unwrap();
        assert_eq!((s.min, s.median, s.p99, s.max), (1, 100, 198, 200));
    }

    #[test]
    fn no_samples_no_statistics() {
        assert_eq!(Stats::of(&[]), None);
    }
}
