//! The bodies of the fuzz targets in `fuzz/` as an ordinary test, for toolchains without
//! `cargo fuzz` (it needs nightly): each entry point of `mcp_oauth_kit::fuzzing` gets a committed
//! set of tricky inputs, then a bounded number of deterministic mutations of them. None may
//! panic. Run with `cargo test -p mcp-oauth-kit --features fuzzing --test fuzz_corpus`.

#![cfg(feature = "fuzzing")]

use mcp_oauth_kit::fuzzing;

/// Mutations generated per seed: enough to reach the parsers' odd corners, cheap enough for CI.
const MUTATIONS_PER_SEED: usize = 300;
/// Seeds longer than this (floods and deep nesting) run once, unmutated: they are there for
/// their size, and a debug build would spend minutes on hundreds of copies.
const MUTATED_SEED_MAX: usize = 4096;

/// A small deterministic generator (xorshift64*): the same inputs on every run, so a failure
/// reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
}

/// Bytes that tend to break parsers: separators, escapes, multi-byte and invalid UTF-8.
const TRICKY: &[&[u8]] = &[
    b"%",
    b"%0",
    b"%zz",
    b"%00",
    b"=",
    b"&",
    b"+",
    b";",
    b":",
    b"@",
    b"#",
    b"?",
    b"/",
    b"\\",
    b"[",
    b"]",
    b"\"",
    b"{",
    b"}",
    b",",
    b"\n",
    b"\r\n",
    b"\t",
    b" ",
    b"\0",
    b"\xff",
    b"\xc3",
    b"\xe2\x80\xae",
    b"\xf0\x9f\x8e\xb2",
    b"\xed\xa0\x80",
];

/// One mutation of `seed`: flip, insert, delete, duplicate or splice a tricky fragment.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.insert(at, u8::try_from(rng.below(256)).unwrap_or(0)),
            2 if !out.is_empty() => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            3 => {
                let end = (at + rng.below(32)).min(out.len());
                let copy = out[at.min(end)..end].to_vec();
                out.splice(at..at, copy.iter().copied().cycle().take(copy.len() * rng.below(8)));
            }
            _ => {
                let fragment = TRICKY[rng.below(TRICKY.len())];
                out.splice(at..at, fragment.iter().copied());
            }
        }
    }
    out
}

/// Feed `target` every seed, then [`MUTATIONS_PER_SEED`] mutations of each, then random bytes.
fn run(name: &str, seeds: &[&[u8]], target: fn(&[u8])) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    let mut inputs = 0usize;
    for seed in seeds {
        target(seed);
        inputs += 1;
        if seed.len() > MUTATED_SEED_MAX {
            continue;
        }
        for _ in 0..MUTATIONS_PER_SEED {
            target(&mutate(seed, &mut rng));
            inputs += 1;
        }
    }
    for _ in 0..MUTATIONS_PER_SEED {
        let len = rng.below(512);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next().to_le_bytes()[0]).collect();
        target(&bytes);
        inputs += 1;
    }
    let small = seeds.iter().filter(|s| s.len() <= MUTATED_SEED_MAX).count();
    assert_eq!(inputs, seeds.len() + (small + 1) * MUTATIONS_PER_SEED, "{name}: inputs run");
}

/// A nested JSON array `depth` levels deep, inside an unknown field of a valid document.
fn deep_json(prefix: &str, depth: usize) -> Vec<u8> {
    format!("{prefix}\"x\":{}{}}}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
}

#[test]
fn form_bodies() {
    let long_key = format!("{}=v", "k".repeat(70_000));
    let many_keys: String = (0..20_000).map(|i| format!("k{i}=v&")).collect();
    let seeds: Vec<&[u8]> = vec![
        b"",
        b"grant_type=authorization_code&code=abc&redirect_uri=http%3A%2F%2F127.0.0.1%3A9999%2Fcb&code_verifier=x",
        b"grant_type=refresh_token&refresh_token=mcp_rt_abc&scope=mcp+admin",
        b"a=1&a=2",
        b"=&&=&==",
        b"scope=%E2%80%AE%00%ff",
        b"k=%",
        b"k=%4",
        b"k%=v",
        b"+=+&%20=%20",
        b"k=\xff\xfe",
        long_key.as_bytes(),
        many_keys.as_bytes(),
    ];
    run("form", &seeds, fuzzing::form);
}

#[test]
fn authorization_headers() {
    let seeds: &[&[u8]] = &[
        b"",
        b"Bearer mcp_at_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH",
        b"bearer  mcp_at_x",
        b"Bearer",
        b"Bearer ",
        b"Basic Y2xpZW50OnNlY3JldA==",
        b"Basic Y2xpZW50",
        b"Basic Og==",
        b"Basic %%%",
        b"Basic Y2xp ZW50OnNlY3JldA==",
        b"Basic /w==",
        b"Basic JUZGOiVGRg==",
        b"Basic ========",
        b"Digest username=x",
        b"\x80\xff",
    ];
    run("authorization_header", seeds, fuzzing::authorization_header);
}

#[test]
fn redirect_uris() {
    let seeds: &[&[u8]] = &[
        b"http://127.0.0.1:9999/callbackhttp://127.0.0.1:1234/callback",
        b"https://app.example.com/cbhttps://app.example.com/cb",
        b"http://evil.example.com@127.0.0.1:1/cbhttp://127.0.0.1:1/cb",
        b"http://[::1]:80/cbhttp://[::1]/cb",
        b"http://localhost/cb#fhttp://localhost/cb",
        b"com.example.app:/oauth2redirectcom.example.app:/oauth2redirect",
        b"javascript:alert(1)data:text/html,x",
        b"https://\xe2\x80\xae.example/https://xn--.example/",
        b"http://127.0.0.1:99999/cbhttp://127.0.0.1:-1/cb",
        b"https://a.example/%2e%2e/cbhttps://a.example/../cb",
        b"\xf0\x9f\x8e\xb2\xf0\x9f\x8e\xb2",
        b"",
    ];
    run("redirect_uri", seeds, fuzzing::redirect_uri);
}

#[test]
fn client_metadata_documents() {
    let deep = deep_json("{\"redirect_uris\":[\"https://a.example/cb\"],", 10_000);
    let seeds: Vec<&[u8]> = vec![
        br#"{"redirect_uris":["http://127.0.0.1:9999/cb"],"token_endpoint_auth_method":"none"}"#,
        br#"{"redirect_uris":[],"grant_types":["authorization_code","refresh_token"],"response_types":["code"]}"#,
        br#"{"redirect_uris":"https://a.example/cb","client_name":7}"#,
        br#"{"redirect_uris":["https://a.example/cb"],"client_name":"\u202eevil\u0000","scope":"mcp admin"}"#,
        br#"{"redirect_uris":["https://a.example/cb"],"redirect_uris":["https://b.example/cb"]}"#,
        br#"{"redirect_uris":["https://a.example/cb"],"x":1e999999}"#,
        br#"{"redirect_uris":["\ud800"]}"#,
        b"[]",
        b"null",
        b"{",
        &deep,
    ];
    run("client_metadata", &seeds, fuzzing::client_metadata);
}

#[test]
fn cimd_documents() {
    let deep = deep_json("{\"client_id\":\"https://app.example.com/client.json\",", 10_000);
    let seeds: Vec<&[u8]> = vec![
        br#"{"client_id":"https://app.example.com/client.json","client_name":"App","redirect_uris":["https://app.example.com/cb"]}"#,
        br#"{"client_id":"https://other.example.com/client.json","redirect_uris":["https://app.example.com/cb"]}"#,
        br#"{"client_id":"https://app.example.com/client.json","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"client_secret_basic","client_secret":"s"}"#,
        br#"{"client_id":"https://app.example.com/client.json","redirect_uris":[]}"#,
        br#"{"client_id":"https://app.example.com/client.json"}"#,
        br#"{"client_id":null,"redirect_uris":[null]}"#,
        b"\xef\xbb\xbf{}",
        b"",
        &deep,
    ];
    run("cimd_document", &seeds, fuzzing::cimd_document);
}
