#![no_main]
// Body and seeds: harness/fuzzing (`dfu_hil_fuzzing::scenario`).
libfuzzer_sys::fuzz_target!(|data: &[u8]| dfu_hil_fuzzing::scenario(data));
