//! How a claim the free frames cannot cover is shared among borrowers: the policy is
//! configuration data (`[system] revocation_share`), the arithmetic is here. Which frames
//! each borrower gives back stays its library OS's choice.

use exo_abi::package::{MAX_PARTITIONS, RevocationShare};

/// Frames to ask of each partition so that, together, `needed` come back: `revocable[id]` is
/// what partition `id` could give back (0 for the claimant and anyone not borrowing). The
/// caller has checked that the sum of `revocable` is at least `needed`; no partition is
/// asked for more than it can give, and the asks add up to `needed` exactly.
pub(super) fn share_out(
    policy: RevocationShare,
    needed: u64,
    revocable: &[u64; MAX_PARTITIONS],
) -> [u64; MAX_PARTITIONS] {
    let mut asks = [0; MAX_PARTITIONS];
    let mut remaining = needed;
    match policy {
        RevocationShare::Proportional => {
            // Shares round up, so they cover `needed`; the running total keeps the last
            // borrowers from being asked for more than is left.
            let total: u64 = revocable.iter().sum();
            for (ask, &can) in asks.iter_mut().zip(revocable) {
                let share =
                    (u128::from(needed) * u128::from(can)).div_ceil(u128::from(total.max(1)));
                *ask = (share as u64).min(can).min(remaining);
                remaining -= *ask;
            }
        }
        RevocationShare::LargestFirst => {
            while remaining > 0 {
                // Largest first; ties go to the lower partition index. At most one pass per
                // borrower: each is emptied or covers the rest.
                let Some((id, &can)) = revocable
                    .iter()
                    .enumerate()
                    .filter(|&(id, &can)| can > 0 && asks[id] == 0)
                    .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
                else {
                    break;
                };
                asks[id] = can.min(remaining);
                remaining -= asks[id];
            }
        }
        RevocationShare::PartitionOrder => {
            for (ask, &can) in asks.iter_mut().zip(revocable) {
                *ask = can.min(remaining);
                remaining -= *ask;
            }
        }
    }
    asks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revocable(values: &[u64]) -> [u64; MAX_PARTITIONS] {
        core::array::from_fn(|i| values.get(i).copied().unwrap_or(0))
    }

    fn asks(policy: RevocationShare, needed: u64, values: &[u64]) -> Vec<u64> {
        share_out(policy, needed, &revocable(values))[..values.len()].to_vec()
    }

    #[test]
    fn proportional_shares_by_what_each_could_give() {
        assert_eq!(
            asks(RevocationShare::Proportional, 30, &[0, 100, 200]),
            [0, 10, 20]
        );
        // Rounding up never asks for more than needed in total.
        assert_eq!(
            asks(RevocationShare::Proportional, 1, &[0, 7, 7, 7]),
            [0, 1, 0, 0]
        );
    }

    #[test]
    fn largest_first_empties_the_biggest_borrower_before_the_next() {
        assert_eq!(
            asks(RevocationShare::LargestFirst, 30, &[0, 100, 200]),
            [0, 0, 30]
        );
        assert_eq!(
            asks(RevocationShare::LargestFirst, 250, &[0, 100, 200]),
            [0, 50, 200]
        );
        // Ties: the lower index first.
        assert_eq!(
            asks(RevocationShare::LargestFirst, 5, &[0, 9, 9]),
            [0, 5, 0]
        );
    }

    #[test]
    fn partition_order_asks_in_configuration_order() {
        assert_eq!(
            asks(RevocationShare::PartitionOrder, 30, &[0, 100, 200]),
            [0, 30, 0]
        );
        assert_eq!(
            asks(RevocationShare::PartitionOrder, 150, &[0, 100, 200]),
            [0, 100, 50]
        );
    }

    /// Every policy asks for exactly what is needed and nobody for more than it can give,
    /// over many mixes of borrowers (a small exhaustive sweep).
    #[test]
    fn every_policy_covers_the_need_within_each_borrowers_means() {
        let mixes: [&[u64]; 5] = [
            &[0, 1],
            &[3, 0, 5],
            &[1, 1, 1, 1],
            &[0, 1000, 1, 77],
            &[9; 8],
        ];
        for (policy, _) in RevocationShare::ALL {
            for mix in mixes {
                let total: u64 = mix.iter().sum();
                for needed in 1..=total {
                    let got = asks(policy, needed, mix);
                    assert_eq!(
                        got.iter().sum::<u64>(),
                        needed,
                        "{policy:?} {mix:?} {needed}"
                    );
                    assert!(
                        got.iter().zip(mix).all(|(a, c)| a <= c),
                        "{policy:?} {mix:?}"
                    );
                }
            }
        }
    }
}
