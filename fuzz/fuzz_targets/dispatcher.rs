//! libFuzzer entry of the `dispatcher` target (see `exo_fuzz_targets::dispatcher`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| exo_fuzz_targets::dispatcher(data));
