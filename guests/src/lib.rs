//! Guest programs for exo partitions. Each binary in `src/bin` is one program, named by the
//! `program` key of a partition in a system configuration (`configs/*.toml`):
//!
//! - `hello`: greets, prints its identity and memory bindings and the SMCCC/PSCI versions,
//!   yields once and exits 0.
//! - `counter`: counts to five, yielding between counts; checks that an unknown exo call is
//!   refused; ends with PSCI `SYSTEM_OFF`.
//! - `panicker`: panics (exit status 101).
//! - `victim`: writes a pattern into its own memory, yields, checks it is intact.
//! - `faulter`: reads an IPA outside its bindings and expects to be stopped by the kernel.
//!
//! The library is empty: programs share code through `exo-libos`.

#![no_std]
#![forbid(unsafe_code)]
