//! Progress as data: the engine emits [`Event`]s through a [`Sink`]; the bin draws them
//! (plain lines when stderr is not a tty: `[3/9] RUN …`, `CACHED`, the step's time).
//!
//! Never: prints. Drawing is the bin's job.

use std::time::Duration;

/// Something that happened during a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A stage starts: its index, its name, its base.
    Stage {
        index: usize,
        name: Option<String>,
        base: String,
    },
    /// A step starts: number (1-based, over the whole build), total, and its text.
    Step {
        n: usize,
        total: usize,
        text: String,
    },
    /// The step was a cache hit.
    Cached { n: usize },
    /// The step finished (it ran).
    Done { n: usize, took: Duration },
    /// A line of output of a RUN step (already on the caller's stderr when streamed).
    Output { n: usize, line: String },
    /// The image was written.
    Written { id: String, tags: Vec<String> },
    /// A warning (e.g. an unsupported option ignored).
    Warning(String),
}

/// Where events go.
pub trait Sink {
    fn event(&mut self, e: Event);
}

/// Drops every event (`-q`).
pub struct Quiet;

impl Sink for Quiet {
    fn event(&mut self, _: Event) {}
}

/// Collects events (tests).
#[derive(Default)]
pub struct Collect(pub Vec<Event>);

impl Sink for Collect {
    fn event(&mut self, e: Event) {
        self.0.push(e);
    }
}
