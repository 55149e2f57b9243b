//! Console reporter, a sink of the run's event stream: one line per step as it finishes, and
//! for a failure the expected/actual table with the evidence, pointing at the step's line in
//! the file that holds it.
//!
//! It writes to stdout, or to any writer (a `Vec<u8>` in tests): the output is testable in
//! memory. Colour and progress bars appear only on a terminal.

use crate::event::{Event, EventSink, Progress};
use crate::result::{ScenarioResult, StepResult, StepStatus};
use crate::scenario::LoadedScenario;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

/// Where the console's lines go.
#[derive(Clone)]
enum Out {
    Stdout,
    /// A shared writer (tests read it back; no colour, no bars).
    Writer(Arc<Mutex<dyn Write + Send>>),
}

pub struct Console {
    pub quiet: bool,
    pub verbose: bool,
    /// The bar of the upload or flash in progress (terminal only).
    bar: Option<ProgressBar>,
    /// When scenarios run in parallel, each one's lines are kept and printed together at its end.
    buffer: Option<String>,
    out: Out,
}

impl Console {
    pub fn new(quiet: bool, verbose: bool) -> Self {
        Console {
            quiet,
            verbose,
            bar: None,
            buffer: None,
            out: Out::Stdout,
        }
    }

    /// A console writing to `w` instead of stdout: plain text, no colour, no progress bars.
    pub fn to_writer(quiet: bool, verbose: bool, w: Arc<Mutex<dyn Write + Send>>) -> Self {
        Console {
            out: Out::Writer(w),
            ..Console::new(quiet, verbose)
        }
    }

    /// A console like this one (same destination) for one of several scenarios running at
    /// once: its lines are kept and printed together at the scenario's end.
    pub fn buffered_like(&self) -> Self {
        Console {
            buffer: Some(String::new()),
            out: self.out.clone(),
            ..Console::new(self.quiet, self.verbose)
        }
    }

    fn on_terminal(&self) -> bool {
        matches!(self.out, Out::Stdout) && std::io::stdout().is_terminal()
    }

    /// ANSI colour only on a terminal, and never with NO_COLOR set (no-color.org).
    fn paint(&self, text: &str, code: &str) -> String {
        let colour =
            self.buffer.is_none() && self.on_terminal() && std::env::var_os("NO_COLOR").is_none();
        if colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// A console for one of several scenarios running at once.
    pub fn buffered(quiet: bool, verbose: bool) -> Self {
        Console {
            buffer: Some(String::new()),
            ..Console::new(quiet, verbose)
        }
    }

    fn line(&mut self, text: String) {
        match &mut self.buffer {
            Some(b) => {
                b.push_str(&text);
                b.push('\n');
            }
            None => self.write(&format!("{text}\n")),
        }
    }

    /// Write text as is. A closed pipe (`| head`) must not kill the run: reports are still
    /// to be written.
    fn write(&self, text: &str) {
        match &self.out {
            Out::Stdout => {
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
            }
            Out::Writer(w) => {
                if let Ok(mut w) = w.lock() {
                    let _ = w.write_all(text.as_bytes());
                }
            }
        }
    }

    /// Print what a buffered console kept.
    fn flush_buffer(&mut self) {
        if let Some(b) = self.buffer.as_mut() {
            let text = std::mem::take(b);
            self.write(&text);
        }
    }
}

impl Console {
    /// A progress bar on stderr for an upload or a flash, only on a terminal and never for
    /// scenarios running in parallel (their lines are buffered) or with `--quiet`. One bar
    /// per operation: a new message (next region) starts a new bar.
    fn progress(&mut self, what: &str, done: u64, total: u64) {
        if self.quiet
            || total == 0
            || self.buffer.is_some()
            || !matches!(self.out, Out::Stdout)
            || !std::io::stderr().is_terminal()
        {
            return;
        }
        let same = self
            .bar
            .as_ref()
            .is_some_and(|b| b.message() == what && b.length() == Some(total));
        if !same {
            if let Some(old) = self.bar.take() {
                old.finish_and_clear();
            }
            let bar = ProgressBar::new(total).with_message(what.to_owned());
            bar.set_style(
                ProgressStyle::with_template(
                    "          {msg:<20} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .expect("constant template")
                .progress_chars("=> "),
            );
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    /// A scenario the board cannot run: one line with the reason (also in quiet mode: a
    /// skipped check must never look like a pass).
    pub fn scenario_skipped(&mut self, r: &ScenarioResult) {
        let word = self.paint("SKIPPED", "33;1");
        self.line(format!(
            "{word}: {} on {}: {}",
            r.name,
            r.board,
            r.skipped.as_deref().unwrap_or("")
        ));
        self.flush_buffer();
    }
}

impl EventSink for Console {
    fn event(&mut self, event: &Event<'_>) {
        match *event {
            Event::ScenarioStarted { scenario, board } => self.scenario_start(scenario, board),
            Event::ScenarioSkipped { result } => self.scenario_skipped(result),
            Event::StepStarted {
                index,
                total,
                summary,
            } => self.step_start(index, total, summary),
            Event::Progress(Progress::Upload { sent, total }) => {
                self.progress("upload", sent, total)
            }
            Event::Progress(Progress::Flash {
                region,
                done,
                total,
            }) => self.progress(&format!("flash {region}"), done, total),
            Event::StepFinished { result, total } => self.step_end(result, total),
            Event::ScenarioFinished { result } => self.scenario_end(result),
            Event::AttemptFinished { .. } => {}
        }
    }
}

impl Console {
    fn scenario_start(&mut self, s: &LoadedScenario, board: &str) {
        if !self.quiet {
            self.line(format!(
                "scenario {} on {board} ({}, {})",
                s.scenario.name, s.scenario.layout, s.scenario.bootloader.mode
            ));
            if let Some(b) = &s.scenario.from_build {
                self.line(format!(
                    "  build {} ({})",
                    b.build.dir.display(),
                    b.named_by
                ));
                for n in &b.notes {
                    self.line(format!("  note: {n}"));
                }
                if board.starts_with("sim") {
                    self.line(format!("  note: {}", b.model_note()));
                }
            }
        }
    }

    fn step_start(&mut self, index: usize, total: usize, summary: &str) {
        if self.verbose {
            self.line(format!("  [{index:>2}/{total}] {summary} ..."));
        }
    }

    fn step_end(&mut self, r: &StepResult, total: usize) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.quiet && r.status == StepStatus::Passed {
            return;
        }
        let (word, colour) = match r.status {
            StepStatus::Passed => ("ok", "32"),
            StepStatus::Failed => ("FAILED", "31;1"),
            StepStatus::Error => ("ERROR", "35;1"),
            StepStatus::Skipped => ("skipped", "2"),
        };
        let word = self.paint(&format!("{word:<6}"), colour);
        self.line(format!(
            "  [{:>2}/{total}] {:<44} {word} {}",
            r.index, r.summary, r.message
        ));
        if matches!(r.status, StepStatus::Failed | StepStatus::Error) {
            let at = format!("          at {}:{}:{}", r.file.display(), r.line, r.column);
            self.line(at);
            for line in r.detail().lines() {
                self.line(format!("        {line}"));
            }
        }
    }

    fn scenario_end(&mut self, r: &ScenarioResult) {
        let verdict = if r.is_skipped() {
            self.paint("SKIPPED", "33;1")
        } else if r.interrupted() {
            self.paint("INTERRUPTED", "33;1")
        } else if r.passed() {
            self.paint("PASSED", "32;1")
        } else {
            self.paint("FAILED", "31;1")
        };
        if !self.quiet || !r.passed() {
            self.line(format!(
                "{verdict}: {} on {} in {:.2} s{}",
                r.name,
                r.board,
                r.elapsed.as_secs_f64(),
                r.evidence
                    .as_ref()
                    .map(|e| format!(" — evidence in {}", e.display()))
                    .unwrap_or_default()
            ));
        }
        self.flush_buffer();
    }
}
