//! Fuzz target: `mcp_oauth_kit::fuzzing::cimd_document` must not panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcp_oauth_kit::fuzzing::cimd_document(data));
