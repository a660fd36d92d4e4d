//! libFuzzer entry of the `elf` target (see `exo_fuzz_targets::elf`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| exo_fuzz_targets::elf(data));
