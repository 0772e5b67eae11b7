//! How far a run is: each step says when it starts (with how much work it has), how much
//! it did, and when it is done, so a command can show one bar per step or none.

/// A step of a run, in the order a run takes them (see [`crate::runner`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Planning the accounts against the ledger.
    Plan,
    /// Recording the due letters (and their emails) as planned.
    Record,
    /// Composing, rendering and writing the letters' PDFs.
    Produce,
    /// Making the print batches.
    Batch,
    /// Recording and writing the run's Treasury actions.
    Refer,
    /// Writing the run's summary and recording it finished.
    Finish,
    /// Releasing the run's batches to the mailroom (`--release`).
    Release,
    /// Sending the queued emails.
    Send,
}

/// Receives a run's progress. Every method has a no-op default.
pub trait Progress {
    /// `step` starts with `total` units of work (letters, emails; 0 when not counted).
    fn start(&self, step: Step, total: usize) {
        let _ = (step, total);
    }
    /// `n` more units of the current step are done.
    fn advance(&self, n: usize) {
        let _ = n;
    }
    /// The current step is done.
    fn finish(&self) {}
}

/// Shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
