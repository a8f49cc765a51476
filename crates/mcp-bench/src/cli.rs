//! The command line: one subcommand per way of measuring, each with its own defaults, and the
//! settings they resolve to. docs/PERFORMANCE.md explains what each mode measures.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::full::{FlowLifetimes, Plan};
use crate::servers::Kind;
use crate::workspace_root;

/// Performance benchmark of mcp-server-example against a bare rmcp server (the ceiling) and a
/// minimal hyper server (the floor).
///
/// It builds the release binaries (unless --no-build), pins every server to core 0 and itself
/// to core 1, signs in through the real OAuth flow and drives `tools/call roll_dice`, checking
/// every answer. Linux with two cores and `taskset` (util-linux); `profile` needs valgrind.
#[derive(Debug, Parser)]
#[command(name = "mcp-bench", version, after_help = "docs/PERFORMANCE.md explains the method and the figures.")]
pub(crate) struct Cli {
    /// Use the binaries next to mcp-bench as they are, without `cargo build --release` first.
    #[arg(long, global = true)]
    pub(crate) no_build: bool,
    #[command(subcommand)]
    pub(crate) mode: Mode,
}

/// What to measure.
#[derive(Debug, Subcommand)]
pub(crate) enum Mode {
    /// Everything in interleaved rounds: MCP calls/s of the example (memory and SQLite stores)
    /// against the rmcp ceiling and the floor, the OAuth endpoints and memory over many sign-ins,
    /// cold start. Report in target/bench-results.md.
    Full(FullArgs),
    /// One short round of what `full` runs (under a minute), with the JWT server as the
    /// candidate; exit status 1 on any failed request or check, or an idle RSS over 16 MiB. CI
    /// runs it. Report in target/bench-smoke.md.
    Smoke,
    /// The example / rmcp ceiling (or candidate) ratio from many short alternating slices
    /// (A B B A), both servers running side by side. Report in target/bench-paired.md.
    Paired(PairedArgs),
    /// The example (or the ceiling) under callgrind for a stateless load: instructions per
    /// call, and the profile in target/callgrind.*.out.
    Profile(ProfileArgs),
    /// What a 64 KiB `/token` body of 16,000 form parameters costs the example, against an
    /// ordinary bad request.
    FormFlood(FormFloodArgs),
}

/// `full`'s options.
#[derive(Debug, Args)]
pub(crate) struct FullArgs {
    #[command(flatten)]
    cells: CellArgs,
    #[command(flatten)]
    setup: SetupArgs,
    /// Full OAuth flows (authorize, login, token) of the memory check, in batches of 500.
    #[arg(long, default_value_t = 10_000)]
    flows: usize,
    /// Run only these parts.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "mcp,oauth,cold")]
    only: Vec<Part>,
}

/// `paired`'s options.
#[derive(Debug, Args)]
pub(crate) struct PairedArgs {
    #[command(flatten)]
    cells: CellArgs,
    #[command(flatten)]
    setup: SetupArgs,
}

/// `profile`'s options.
#[derive(Debug, Args)]
pub(crate) struct ProfileArgs {
    /// Profile the session mode instead of the stateless one.
    #[arg(long)]
    pub(crate) stateful: bool,
    /// Profile the rmcp ceiling instead of the example.
    #[arg(long, conflicts_with = "jwt")]
    pub(crate) ceiling: bool,
    /// Profile the JWT server (the example's tools with a `JwtVerifier`) instead of the example.
    #[arg(long)]
    pub(crate) jwt: bool,
    /// Also simulate the caches (instruction- and data-cache misses per call): the way to see
    /// them on a virtual machine without hardware counters.
    #[arg(long)]
    pub(crate) cache_sim: bool,
    /// Seconds of instrumented load.
    #[arg(long, value_parser = seconds, default_value = "10")]
    pub(crate) duration: Duration,
    /// Extra environment for the example or the JWT server (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    pub(crate) server_env: Vec<(String, String)>,
    /// Another build of the example to profile (built into another target directory), instead
    /// of the one next to mcp-bench.
    #[arg(long, value_name = "PATH", conflicts_with = "ceiling")]
    pub(crate) bin: Option<PathBuf>,
}

impl ProfileArgs {
    /// The server to profile.
    pub(crate) fn kind(&self) -> Kind {
        match (self.ceiling, self.jwt) {
            (true, _) => Kind::Ceiling,
            (false, true) => Kind::Jwt,
            (false, false) => Kind::Example,
        }
    }
}

/// `form-flood`'s options.
#[derive(Debug, Args)]
pub(crate) struct FormFloodArgs {
    /// Seconds of requests of each kind (at least 5 requests).
    #[arg(long, value_parser = seconds, default_value = "3")]
    pub(crate) duration: Duration,
}

/// The MCP cells' shape; `None` takes the mode's default, named in each help line.
#[derive(Debug, Args)]
struct CellArgs {
    /// Interleaved rounds [full: 3], or pairs of slices per cell [paired: 30].
    #[arg(long, value_parser = positive)]
    rounds: Option<usize>,
    /// Seconds of warm-up before each measured window [full: 0.5, paired: 0.2].
    #[arg(long, value_parser = seconds)]
    warmup: Option<Duration>,
    /// Measured seconds per cell or slice [full: 3, paired: 0.5].
    #[arg(long, value_parser = seconds)]
    duration: Option<Duration>,
    /// Connection counts [full: 1,16,64; paired: 16,64].
    #[arg(long, value_delimiter = ',', value_parser = positive)]
    conns: Option<Vec<usize>>,
    /// Before each cell, wait up to this many seconds for cores 0 and 1 to be free of other
    /// processes, then measure anyway [full: 30, paired: 2].
    #[arg(long, value_name = "SECS", value_parser = seconds_or_zero)]
    quiet_wait: Option<Duration>,
    /// Where the markdown report goes [full: target/bench-results.md, paired: target/bench-paired.md].
    #[arg(long)]
    out: Option<PathBuf>,
}

/// What runs beside the example as it ships.
#[derive(Debug, Args)]
struct SetupArgs {
    /// Extra environment for every example server, the candidate's too (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    server_env: Vec<(String, String)>,
    /// A candidate: another build of the example (built into another target directory), run
    /// beside the example (full) or in the ceiling's place (paired).
    #[arg(long, value_name = "PATH")]
    candidate_bin: Option<PathBuf>,
    /// A candidate that is another server: `jwt`, the example's tools behind the kit with a
    /// `JwtVerifier`, called with JWTs that the bench signs (--candidate-env applies to it).
    #[arg(long, value_enum, conflicts_with = "candidate_bin")]
    candidate: Option<CandidateServer>,
    /// Extra environment for the candidate (repeatable); alone, it makes the example with this
    /// environment the candidate.
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    candidate_env: Vec<(String, String)>,
}

/// A server other than the example, as a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CandidateServer {
    /// The example's tools with a `JwtVerifier` in place of the built-in authorization server.
    Jwt,
}

/// A part of `full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Part {
    /// MCP calls/s, latency and memory per server.
    Mcp,
    /// The OAuth endpoints' rates, and memory over many sign-ins.
    Oauth,
    /// Start-up time and idle memory.
    Cold,
}

/// How the MCP cells run, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Cells {
    pub(crate) rounds: usize,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    pub(crate) conns: Vec<usize>,
    pub(crate) quiet_wait: Duration,
    pub(crate) out: PathBuf,
}

impl CellArgs {
    fn resolve(self, defaults: Cells) -> Cells {
        Cells {
            rounds: self.rounds.unwrap_or(defaults.rounds),
            warmup: self.warmup.unwrap_or(defaults.warmup),
            duration: self.duration.unwrap_or(defaults.duration),
            conns: self.conns.unwrap_or(defaults.conns),
            quiet_wait: self.quiet_wait.unwrap_or(defaults.quiet_wait),
            out: self.out.unwrap_or(defaults.out),
        }
    }
}

/// The example's extra environment and the candidate, resolved.
#[derive(Debug, Clone, Default)]
pub(crate) struct Setup {
    pub(crate) server_env: Vec<(String, String)>,
    pub(crate) candidate: Option<Candidate>,
}

/// Another build or environment of the example, or the JWT server, measured against the
/// example.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// [`Kind::Example`] or [`Kind::Jwt`].
    pub(crate) kind: Kind,
    /// `None`: the binary next to mcp-bench.
    pub(crate) bin: Option<PathBuf>,
    pub(crate) env: Vec<(String, String)>,
}

impl Candidate {
    /// The JWT server as it builds, with its default environment.
    pub(crate) fn jwt() -> Self {
        Self { kind: Kind::Jwt, bin: None, env: Vec::new() }
    }

    /// What the candidate is, for a report: `` binary `mcp-jwt-server`, extra env: none``.
    pub(crate) fn describe(&self) -> String {
        let bin = self.bin.as_ref().map_or_else(|| self.kind.binary().to_owned(), |b| b.display().to_string());
        let env: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let env = if env.is_empty() { "none".to_owned() } else { format!("`{}`", env.join(" ")) };
        format!("binary `{bin}`, extra env: {env}")
    }
}

impl From<SetupArgs> for Setup {
    fn from(a: SetupArgs) -> Self {
        let kind = match a.candidate {
            Some(CandidateServer::Jwt) => Kind::Jwt,
            None => Kind::Example,
        };
        let candidate = (a.candidate.is_some() || a.candidate_bin.is_some() || !a.candidate_env.is_empty())
            .then_some(Candidate { kind, bin: a.candidate_bin, env: a.candidate_env });
        Self { server_env: a.server_env, candidate }
    }
}

/// Sign-ins per example start: the connections share their tokens round-robin.
const TOKENS_PER_BOOT: usize = 4;

impl FullArgs {
    /// `full`: three rounds of 3 s cells, 10,000 flows, five cold starts.
    pub(crate) fn plan(self) -> Plan {
        let cells = self.cells.resolve(Cells {
            rounds: 3,
            warmup: Duration::from_millis(500),
            duration: Duration::from_secs(3),
            conns: vec![1, 16, 64],
            quiet_wait: Duration::from_secs(30),
            out: workspace_root().join("target/bench-results.md"),
        });
        Plan {
            smoke: false,
            cells,
            setup: self.setup.into(),
            parts: self.only,
            flows: self.flows,
            flow_batch: 500.min(self.flows.max(1)),
            // 10,000 flows take about three minutes: tokens and sessions expire 10 s after a
            // flow, codes after 60 s, so most of the run is in the steady state.
            flow_lifetimes: FlowLifetimes {
                access: Duration::from_secs(5),
                refresh: Duration::from_secs(10),
                session: Duration::from_secs(10),
                sweep: Duration::from_secs(2),
                max_wait: Duration::from_secs(120),
            },
            oauth_duration: Duration::from_secs(3),
            cold_runs: 5,
            tokens_per_boot: TOKENS_PER_BOOT,
        }
    }
}

/// `smoke`: everything once, briefly, the JWT server beside the example; only correctness and
/// idle RSS are judged.
pub(crate) fn smoke_plan() -> Plan {
    Plan {
        smoke: true,
        cells: Cells {
            rounds: 1,
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(300),
            conns: vec![1, 16, 64],
            quiet_wait: Duration::ZERO,
            out: workspace_root().join("target/bench-smoke.md"),
        },
        setup: Setup { server_env: Vec::new(), candidate: Some(Candidate::jwt()) },
        parts: vec![Part::Mcp, Part::Oauth, Part::Cold],
        flows: 24,
        flow_batch: 24,
        // Tokens and sessions expire and are swept within the 5 s wait (not the codes: their
        // 60 s is fixed); 24 flows are too few to judge boundedness anyway.
        flow_lifetimes: FlowLifetimes {
            access: Duration::from_secs(1),
            refresh: Duration::from_secs(2),
            session: Duration::from_secs(2),
            sweep: Duration::from_secs(1),
            max_wait: Duration::from_secs(5),
        },
        oauth_duration: Duration::from_millis(300),
        cold_runs: 1,
        tokens_per_boot: 2,
    }
}

/// `paired`'s settings.
#[derive(Debug, Clone)]
pub(crate) struct PairedPlan {
    pub(crate) cells: Cells,
    pub(crate) setup: Setup,
    pub(crate) tokens_per_boot: usize,
}

impl PairedArgs {
    /// `paired`: many short slices, so that the two halves of a pair are under a second apart.
    pub(crate) fn plan(self) -> PairedPlan {
        let cells = self.cells.resolve(Cells {
            rounds: 30,
            warmup: Duration::from_millis(200),
            duration: Duration::from_millis(500),
            conns: vec![16, 64],
            quiet_wait: Duration::from_secs(2),
            out: workspace_root().join("target/bench-paired.md"),
        });
        PairedPlan { cells, setup: self.setup.into(), tokens_per_boot: TOKENS_PER_BOOT }
    }
}

fn positive(v: &str) -> Result<usize, String> {
    v.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| format!("{v:?} is not a positive whole number"))
}

fn seconds(v: &str) -> Result<Duration, String> {
    let d = seconds_or_zero(v)?;
    if d.is_zero() { Err(format!("{v:?} is not a positive number of seconds")) } else { Ok(d) }
}

fn seconds_or_zero(v: &str) -> Result<Duration, String> {
    v.trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{v:?} is not a number of seconds"))
}

fn key_value(v: &str) -> Result<(String, String), String> {
    match v.split_once('=') {
        Some((k, val)) if !k.is_empty() => Ok((k.to_owned(), val.to_owned())),
        _ => Err(format!("{v:?} is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mcp-bench").chain(args.iter().copied()))
    }

    fn paired(args: &[&str]) -> PairedPlan {
        match parse(&[&["paired"], args].concat()).map(|c| c.mode) {
            Ok(Mode::Paired(p)) => p.plan(),
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn the_commands_the_team_and_ci_use_parse() {
        assert!(matches!(parse(&["smoke"]).map(|c| c.mode), Ok(Mode::Smoke)));
        let cli = parse(&["paired", "--no-build", "--candidate-bin", "/tmp/b/example", "--rounds", "4"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(cli.no_build);
        let Mode::Paired(p) = cli.mode else { panic!("not paired") };
        let p = p.plan();
        assert_eq!(p.cells.rounds, 4);
        let candidate = p.setup.candidate.unwrap_or_else(|| panic!("no candidate"));
        assert_eq!(candidate.bin, Some(PathBuf::from("/tmp/b/example")));
    }

    #[test]
    fn paired_has_short_slices_unless_told_otherwise() {
        let p = paired(&[]);
        assert_eq!((p.cells.rounds, p.cells.conns.clone()), (30, vec![16, 64]));
        assert_eq!((p.cells.warmup, p.cells.duration), (Duration::from_millis(200), Duration::from_millis(500)));
        assert!(p.cells.out.ends_with("target/bench-paired.md"));
        assert!(p.setup.candidate.is_none());
        let p = paired(&["--rounds", "8", "--duration", "1", "--conns", "16", "--candidate-env", "RUST_LOG=off"]);
        assert_eq!((p.cells.rounds, p.cells.duration, p.cells.conns), (8, Duration::from_secs(1), vec![16]));
        let candidate = p.setup.candidate.unwrap_or_else(|| panic!("--candidate-env alone makes a candidate"));
        assert_eq!(candidate.kind, Kind::Example);
        assert_eq!((candidate.bin, candidate.env), (None, vec![("RUST_LOG".to_owned(), "off".to_owned())]));
    }

    #[test]
    fn the_jwt_server_is_a_candidate_and_what_smoke_and_profile_run() {
        let p = paired(&["--candidate", "jwt", "--candidate-env", "TOKEN_CACHE_TTL_SECS=0"]);
        let candidate = p.setup.candidate.unwrap_or_else(|| panic!("--candidate jwt makes a candidate"));
        assert_eq!((candidate.kind, candidate.bin.as_ref()), (Kind::Jwt, None));
        assert_eq!(candidate.describe(), "binary `mcp-jwt-server`, extra env: `TOKEN_CACHE_TTL_SECS=0`");
        assert!(parse(&["paired", "--candidate", "jwt", "--candidate-bin", "/tmp/b/example"]).is_err());
        assert!(parse(&["paired", "--candidate", "introspection"]).is_err());
        assert_eq!(smoke_plan().setup.candidate.map(|c| c.kind), Some(Kind::Jwt));
        let profile = |args: &[&str]| match parse(&[&["profile"], args].concat()).map(|c| c.mode) {
            Ok(Mode::Profile(p)) => p.kind(),
            other => panic!("{args:?}: {other:?}"),
        };
        assert_eq!(
            (profile(&[]), profile(&["--jwt"]), profile(&["--ceiling"])),
            (Kind::Example, Kind::Jwt, Kind::Ceiling)
        );
        assert!(parse(&["profile", "--jwt", "--ceiling"]).is_err());
    }

    #[test]
    fn full_takes_its_parts_and_flows() {
        let Ok(Mode::Full(f)) = parse(&["full", "--only", "mcp,cold", "--flows", "100"]).map(|c| c.mode) else {
            panic!("full did not parse")
        };
        let plan = f.plan();
        assert_eq!(plan.parts, vec![Part::Mcp, Part::Cold]);
        assert_eq!((plan.flows, plan.flow_batch, plan.cells.rounds), (100, 100, 3));
    }

    #[test]
    fn bad_values_are_refused_with_their_reason() {
        for bad in [
            &["paired", "--rounds", "0"][..],
            &["paired", "--duration", "-1"],
            &["paired", "--duration", "0"],
            &["paired", "--conns", "16,x"],
            &["full", "--only", "mcp,disk"],
            &["full", "--server-env", "NOEQUALS"],
            &["smoke", "--rounds", "2"],
            &["benchmark"],
            &[],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse(&["paired", "--quiet-wait", "0"]).is_ok(), "no quiet wait at all is allowed");
    }
}
