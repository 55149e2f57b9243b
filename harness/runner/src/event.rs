//! The event stream of a run: the executor says what happens as it happens, with typed
//! results, and every reporter — console, JUnit/JSON aggregator, farm summary — is a sink of
//! the same stream. A sink never parses text another part wrote, and a sink that collects into
//! memory makes console output and reports testable without a terminal.

use crate::result::{ScenarioResult, StepResult};
use crate::scenario::LoadedScenario;

/// Bytes moved by a long operation, reported as it goes (monotonic; the last report has
/// `done == total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// An SMP image upload: bytes the device acknowledged.
    Upload { sent: u64, total: u64 },
    /// Programming a region through the probe.
    Flash {
        region: &'a str,
        done: u64,
        total: u64,
    },
}

/// One thing that happened in a run.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A scenario starts on a board.
    ScenarioStarted {
        scenario: &'a LoadedScenario,
        board: &'a str,
    },
    /// A scenario was not run: the board lacks something it needs (the result says what).
    ScenarioSkipped { result: &'a ScenarioResult },
    /// Step `index` (1-based) of `total` starts.
    StepStarted {
        index: usize,
        total: usize,
        summary: &'a str,
    },
    /// Progress of the running step.
    Progress(Progress<'a>),
    /// A step ended (passed, failed, error, or skipped after an earlier failure).
    StepFinished {
        result: &'a StepResult,
        total: usize,
    },
    /// A scenario ended; its evidence (if any) is written.
    ScenarioFinished { result: &'a ScenarioResult },
    /// One attempt of a scenario the farm may rerun ended (`attempt` is 1-based; the final
    /// attempt is also reported as `ScenarioFinished`).
    AttemptFinished {
        result: &'a ScenarioResult,
        attempt: usize,
        of: usize,
    },
}

/// A receiver of run events.
pub trait EventSink {
    fn event(&mut self, event: &Event<'_>);
}

/// A sink that ignores everything.
pub struct Silent;

impl EventSink for Silent {
    fn event(&mut self, _: &Event<'_>) {}
}

/// Several sinks fed from one stream, in order.
pub struct Fanout<'a> {
    sinks: Vec<&'a mut dyn EventSink>,
}

impl<'a> Fanout<'a> {
    pub fn new(sinks: Vec<&'a mut dyn EventSink>) -> Self {
        Fanout { sinks }
    }
}

impl EventSink for Fanout<'_> {
    fn event(&mut self, event: &Event<'_>) {
        for s in &mut self.sinks {
            s.event(event);
        }
    }
}

/// Collects the results of finished and skipped scenarios (the input of JUnit and JSON).
#[derive(Debug, Default)]
pub struct Collector {
    pub results: Vec<ScenarioResult>,
}

impl EventSink for Collector {
    fn event(&mut self, event: &Event<'_>) {
        match event {
            Event::ScenarioFinished { result } | Event::ScenarioSkipped { result } => {
                self.results.push((*result).clone())
            }
            _ => {}
        }
    }
}

impl<F: FnMut(&Event<'_>)> EventSink for F {
    fn event(&mut self, event: &Event<'_>) {
        self(event)
    }
}
