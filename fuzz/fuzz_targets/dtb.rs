//! libFuzzer entry of the `dtb` target (see `exo_fuzz_targets::dtb`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| exo_fuzz_targets::dtb(data));
