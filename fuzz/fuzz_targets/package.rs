//! libFuzzer entry of the `package` target (see `exo_fuzz_targets::package`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| exo_fuzz_targets::package(data));
