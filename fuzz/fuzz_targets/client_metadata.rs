//! Fuzz target: `mcp_oauth_kit::fuzzing::client_metadata` must not panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcp_oauth_kit::fuzzing::client_metadata(data));
