//! libFuzzer entry of the `config` target (see `exo_fuzz_targets::config`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| exo_fuzz_targets::config(data));
