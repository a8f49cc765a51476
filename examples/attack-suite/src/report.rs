//! What each probe observed, its verdict, and the tally printed at the end.

use std::fmt::Write as _;

/// What one probe saw and what it found wrong. No problems means PASS.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    observed: Vec<String>,
    problems: Vec<String>,
}

impl Outcome {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Notes something the server did (printed on the probe's line either way).
    pub(crate) fn saw(&mut self, what: impl Into<String>) {
        self.observed.push(what.into());
    }

    /// Demands `ok`; otherwise the probe fails with `problem`.
    pub(crate) fn expect(&mut self, ok: bool, problem: impl Into<String>) {
        if !ok {
            self.problems.push(problem.into());
        }
    }
}

/// Prints one line per probe and counts the verdicts.
#[derive(Debug, Default)]
pub(crate) struct Report {
    passed: usize,
    failed: usize,
}

impl Report {
    /// Prints `PASS  <id>: …` or `FAIL  <id>: …` for a finished probe. A probe that could not
    /// run to its end (`Err`) fails too: the attack was not shown to be refused.
    pub(crate) fn record(&mut self, id: &str, result: anyhow::Result<Outcome>) {
        let line = match result {
            Ok(outcome) if outcome.problems.is_empty() => {
                self.passed += 1;
                format!("PASS  {id}: {}", joined(&outcome.observed))
            }
            Ok(outcome) => {
                self.failed += 1;
                let mut line = format!("FAIL  {id}: {}", outcome.problems.join("; "));
                if !outcome.observed.is_empty() {
                    let _ = write!(line, " (observed: {})", joined(&outcome.observed));
                }
                line
            }
            Err(e) => {
                self.failed += 1;
                format!("FAIL  {id}: the probe could not complete: {e:#}")
            }
        };
        println!("{}", one_line(&line));
    }

    pub(crate) fn failed(&self) -> usize {
        self.failed
    }

    /// The last line: exactly `N passed, M failed`.
    pub(crate) fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failed)
    }
}

/// Observations separated by `; `, except after a label that ends with `:`.
fn joined(observed: &[String]) -> String {
    let mut out = String::new();
    for item in observed {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(item);
    }
    out
}

/// Keeps a report line on one line whatever the server put in it.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}
