//! Probes for register isolation: one partition fills its registers with a pattern and is
//! preempted; another looks for the pattern in its own registers after every switch. The
//! kernel's world switch must save and restore everything another partition could observe:
//! general and FP/SIMD registers and EL1/EL0 thread registers.

use crate::arch;

/// Fills every general register except one loop counter, all 32 SIMD registers and
/// `TPIDR_EL0`, `TPIDRRO_EL0`, `TPIDR_EL1`, `CONTEXTIDR_EL1`, `SP_EL0` with `pattern`, then
/// spins `spins` times without a hypercall (the time slice preempts it), then restores them.
pub fn spin_with_pattern(pattern: u64, spins: u64) {
    arch::spin_filled(pattern, spins);
}

/// Reads the performance monitors' cycle counter (`PMCCNTR_EL0`). The counters are shared by
/// every partition on a core, so the kernel traps the access and stops the partition: this
/// never returns on exo (it exists to show that).
pub fn read_cycle_counter() -> u64 {
    arch::read_cycle_counter()
}

/// The registers as found right after a yield.
pub struct Snapshot {
    words: [u64; 104],
}

/// Names of the snapshot's words, for reports.
fn name(index: usize) -> Register {
    match index {
        0..=30 => Register("x", Some(index)),
        32..=95 => Register("q", Some((index - 32) / 2)),
        96 => Register("TPIDR_EL0", None),
        97 => Register("TPIDRRO_EL0", None),
        98 => Register("TPIDR_EL1", None),
        99 => Register("CONTEXTIDR_EL1", None),
        100 => Register("SP_EL0", None),
        _ => Register("unused", Some(index)),
    }
}

/// A register's name: a bank and number (`x5`, `q3`) or a system register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Register(pub &'static str, pub Option<usize>);

impl core::fmt::Display for Register {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.1 {
            Some(n) => write!(f, "{}{n}", self.0),
            None => f.write_str(self.0),
        }
    }
}

impl Snapshot {
    /// Yields the CPU and records the registers as the kernel restores them.
    pub fn after_yield() -> Self {
        let mut words = [0; 104];
        arch::yield_and_snapshot(&mut words);
        Self { words }
    }

    /// The registers (by name and index) whose value satisfies `is_pattern` (either half, for
    /// SIMD registers).
    ///
    /// A predicate, not a value: the checking partition must never hold the pattern itself,
    /// or a stale copy in one of its own registers would look like a leak. Compare a
    /// non-invertible fingerprint instead.
    pub fn holding<'a>(
        &'a self,
        is_pattern: impl Fn(u64) -> bool + 'a,
    ) -> impl Iterator<Item = Register> + 'a {
        self.words
            .iter()
            .enumerate()
            .filter(move |&(i, &w)| i != 31 && i < 101 && is_pattern(w))
            .map(|(i, _)| name(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_registers_holding_the_pattern() {
        let mut words = [0; 104];
        words[5] = 7;
        words[32 + 2 * 3 + 1] = 7;
        words[98] = 7;
        words[31] = 7; // padding, never reported
        let snapshot = Snapshot { words };
        let found: Vec<_> = snapshot.holding(|w| w == 7).collect();
        assert_eq!(
            found,
            vec![
                Register("x", Some(5)),
                Register("q", Some(3)),
                Register("TPIDR_EL1", None)
            ]
        );
        assert_eq!(found[0].to_string(), "x5");
        assert_eq!(found[2].to_string(), "TPIDR_EL1");
    }
}
