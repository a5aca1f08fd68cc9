//! Turning errors into the one line printed on stderr, and into the exit code.
//!
//! ```text
//!   error: spec.hyperparameters: at most 100 hyperparameters are allowed, got 101 (InvalidArgument)
//! ```
//!
//! A gRPC status shows as `<message> (<code>)`: the scheduler's message already names the
//! field, and the code tells a script what kind of failure it was. Exit codes: 2 for
//! usage errors (clap's own, and [`usage`] errors found after parsing), an [`Exit`]'s own
//! code (e.g. how a waited-for training ended), 1 for the rest.

use std::error::Error as StdError;
use std::process::ExitCode;

use tonic::Status;

/// Exit code of a bad command line, as clap uses it.
const USAGE_EXIT_CODE: u8 = 2;

/// A usage error found after parsing, e.g. a training field given neither as a flag nor
/// in the spec file. Exits with code 2 like clap's own usage errors.
pub fn usage(message: impl std::fmt::Display) -> anyhow::Error {
    clap::Error::raw(clap::error::ErrorKind::MissingRequiredArgument, format!("{message}\n")).into()
}

/// An outcome that is not a failure of the command itself but must still end the process
/// with a chosen code, e.g. `training wait` seeing the training stopped. Its message is
/// printed like any error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for Exit {}

/// Prints `e` on stderr and returns the process exit code.
pub fn print(e: &anyhow::Error) -> ExitCode {
    match e.downcast_ref::<clap::Error>() {
        // clap formats it (with its "error: " prefix and colours on a terminal). Nothing
        // useful is left to do if stderr itself is gone.
        Some(usage) => drop(usage.print()),
        None => eprintln!("error: {}", render(e)),
    }
    exit_code(e)
}

pub fn exit_code(e: &anyhow::Error) -> ExitCode {
    if e.downcast_ref::<clap::Error>().is_some() {
        ExitCode::from(USAGE_EXIT_CODE)
    } else if let Some(exit) = e.downcast_ref::<Exit>() {
        ExitCode::from(exit.code)
    } else {
        ExitCode::FAILURE
    }
}

/// The whole cause chain on one line: `context: cause: root cause`.
pub fn render(e: &anyhow::Error) -> String {
    join(e.chain())
}

/// The source chain of a plain error (e.g. tonic's transport error, whose own message
/// is just "transport error" and whose sources say what happened).
pub fn chain(e: &(dyn StdError + 'static)) -> String {
    join(std::iter::successors(Some(e), |e| (*e).source()))
}

/// A status as `<message> (<code>)`. tonic's own `Display` includes metadata and
/// details, too much for one line.
pub fn status(s: &Status) -> String {
    format!("{} ({:?})", status_message(s), s.code())
}

/// The status message on one line, or the code's description when it is empty.
fn status_message(s: &Status) -> String {
    match s.message().trim() {
        "" => s.code().description().to_string(),
        message => message.replace('\n', " "),
    }
}

fn join<'a>(chain: impl Iterator<Item = &'a (dyn StdError + 'static)>) -> String {
    let mut line = String::new();
    // A status's code goes at the end of the line, after its causes (tonic wraps
    // transport failures in a status whose sources say what actually happened).
    let mut code = None;
    for e in chain {
        let part = match e.downcast_ref::<Status>() {
            Some(s) => {
                code = code.or(Some(s.code()));
                status_message(s)
            }
            None => e.to_string(),
        };
        // hyper and tonic wrap errors in layers that repeat the inner message.
        if part.is_empty() || line.ends_with(&part) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&part);
    }
    if let Some(code) = code {
        line.push_str(&format!(" ({code:?})"));
    }
    line
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;
    use tonic::Code;

    use super::*;

    #[test]
    fn status_shows_message_and_code() {
        let s = Status::invalid_argument("spec.hyperparameters: at most 100 hyperparameters are allowed, got 101");
        let e = anyhow::Error::from(s);
        assert_eq!(
            render(&e),
            "spec.hyperparameters: at most 100 hyperparameters are allowed, got 101 (InvalidArgument)"
        );
        assert_eq!(status(&Status::new(Code::NotFound, "")), "Some requested entity was not found (NotFound)");
    }

    #[test]
    fn status_code_follows_the_causes_it_wraps() {
        let cause = std::io::Error::other("stream closed because of a broken pipe");
        let e = anyhow::Error::from(Status::from_error(Box::new(cause)));
        assert_eq!(render(&e), "stream closed because of a broken pipe (Unknown)");
    }

    #[test]
    fn context_and_causes_join_on_one_line() {
        let e = Err::<(), _>(std::io::Error::other("disk on fire")).context("reading x.toml").unwrap_err();
        assert_eq!(render(&e), "reading x.toml: disk on fire");
    }

    #[test]
    fn usage_errors_exit_with_2_and_others_with_1() {
        assert_eq!(exit_code(&usage("missing --experiment")), ExitCode::from(2));
        assert_eq!(exit_code(&anyhow::anyhow!("boom")), ExitCode::FAILURE);
    }

    #[test]
    fn an_exit_carries_its_own_code_and_message() {
        let e = anyhow::Error::new(Exit { code: 2, message: "training \"mnist\" ended STOPPED".into() });
        assert_eq!(exit_code(&e), ExitCode::from(2));
        assert_eq!(render(&e), "training \"mnist\" ended STOPPED");
    }
}
