//! The CLI's error: what went wrong and which exit code it means.
//!
//! Commands return `CliResult<Exit>` — `Ok` with the verdict (a failed scenario or an image
//! finding is a verdict, not an error) or `Err` with a [`CliError`] that carries its code.
//! [`finish`] is the one place that turns either into a process exit code, so two commands
//! cannot disagree about what a code means.

use dfu_hil_runner::exit::Exit;
use std::fmt;
use std::io::Write;

/// A command's error with the exit code it stands for.
pub struct CliError {
    exit: Exit,
    error: anyhow::Error,
}

/// What a command returns: its exit code on success, or an error that knows its code.
pub type CliResult<T = Exit> = Result<T, CliError>;

impl CliError {
    /// An error with an explicit code.
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        CliError {
            exit,
            error: error.into(),
        }
    }

    /// Bad input (a file, an option, an inventory): exit 96.
    pub fn invalid(message: impl fmt::Display) -> Self {
        CliError::new(Exit::InvalidInput, anyhow::anyhow!("{message}"))
    }

    /// A board, probe, port or link that is unavailable: exit 98.
    pub fn infrastructure(message: impl fmt::Display) -> Self {
        CliError::new(Exit::Infrastructure, anyhow::anyhow!("{message}"))
    }

    /// A verdict against the device (an SMP error answer): exit 100.
    pub fn failed(message: impl fmt::Display) -> Self {
        CliError::new(Exit::ScenarioFailed, anyhow::anyhow!("{message}"))
    }

    /// The exit code this error stands for.
    pub fn exit(&self) -> Exit {
        self.exit
    }

    /// The underlying error (with its context chain).
    pub fn error(&self) -> &anyhow::Error {
        &self.error
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl fmt::Debug for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (exit {})", self, self.exit.code())
    }
}

/// An error a command did not classify: the CLI has always reported those as invalid input
/// (an unreadable file, a bad option value), so `?` on an `anyhow::Error` keeps meaning 96.
impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        CliError::new(Exit::InvalidInput, error)
    }
}

/// Writing a command's output failed (e.g. into a full disk): as any unclassified error, 96.
impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        CliError::new(Exit::InvalidInput, error)
    }
}

/// A JSON report that could not be rendered: as any unclassified error, 96.
impl From<serde_json::Error> for CliError {
    fn from(error: serde_json::Error) -> Self {
        CliError::new(Exit::InvalidInput, error)
    }
}

/// The process exit code of a command's result, printing an error as `error: …` on `err`.
/// `T` is [`Exit`] for ordinary commands, or a raw status for the native_sim stand-ins.
pub fn finish<T: Into<u8>>(result: CliResult<T>, err: &mut dyn Write) -> u8 {
    match result {
        Ok(code) => code.into(),
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            e.exit().code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_prints_the_error_and_returns_its_code() {
        let mut err = Vec::new();
        let r: CliResult = Err(CliError::infrastructure("port /dev/ttyACM0: busy"));
        assert_eq!(finish(r, &mut err), 98);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "error: port /dev/ttyACM0: busy\n"
        );
        let mut err = Vec::new();
        assert_eq!(finish(Ok(Exit::ScenarioFailed), &mut err), 100);
        assert!(err.is_empty());
    }

    #[test]
    fn unclassified_errors_are_invalid_input_with_their_context() {
        let e: CliError = anyhow::anyhow!("no such file")
            .context("reading app.bin")
            .into();
        assert_eq!(e.exit(), Exit::InvalidInput);
        assert_eq!(e.to_string(), "reading app.bin: no such file");
    }
}
