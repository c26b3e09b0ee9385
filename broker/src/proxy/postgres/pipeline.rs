//! The hook pipeline of a session: which hooks see each message, and in what
//! order. The order is a correctness rule, so it is the shape of these two
//! types rather than a convention:
//!
//! - **client → server**: the protocol state notes the message
//!   ([`SentState::observe`]), then the **guard** stage judges statements,
//!   holds reviews and records them ([`super::guarded`]). The state notes a
//!   message before the guard may replace it with a marker, so the notes
//!   follow what the client meant; the marker is answered in its place.
//! - **server → client**: the protocol state notes the answer
//!   ([`AnsweredState::observe`]), then **record** (statement outcomes, from
//!   the server's own answers before anything replaces them,
//!   [`super::recorded`]), then **guard** (puts a refusal in place of the
//!   marker's error, [`super::guarded`]), then **mask** (masks what the
//!   client will get and captures result rows after masking,
//!   [`super::masked`]).
//!
//! A stage that forwards passes the message to the next; one that replaces
//! it ends the pipeline for that message; one that waits
//! ([`Verdict::Wait`]) is shown the same message again when the wait ends,
//! without the state or the stages before it seeing it twice.

use super::relay::{FrameHook, Verdict};
use super::state::{AnsweredState, SentState};
use super::wire::{ClientFrame, FromClient, FromServer, ServerFrame};

/// A client → server stage: sees each client message with the state as
/// noted for it.
pub(crate) trait ClientStage: Send {
    /// Decides on one message.
    fn on_client(&mut self, frame: &ClientFrame<'_>, state: &SentState) -> Verdict;
}

/// A server → client stage: sees each server message with the state as
/// noted for it.
pub(crate) trait ServerStage: Send {
    /// Decides on one message.
    fn on_server(&mut self, frame: &ServerFrame<'_>, state: &AnsweredState) -> Verdict;
}

/// Client → server: state, then guard.
pub(crate) struct ClientPipeline<G> {
    /// The client half of the protocol state.
    pub state: SentState,
    /// Guardrails, reviews, statement records.
    pub guard: G,
    /// The guard waited on the message now shown again.
    resume: bool,
}

impl<G: ClientStage> ClientPipeline<G> {
    /// The pipeline over `state` and `guard`.
    pub(crate) fn new(state: SentState, guard: G) -> Self {
        ClientPipeline {
            state,
            guard,
            resume: false,
        }
    }
}

impl<G: ClientStage> FrameHook<FromClient> for ClientPipeline<G> {
    #[inline]
    fn on_frame(&mut self, frame: &ClientFrame<'_>) -> Verdict {
        if !std::mem::take(&mut self.resume) {
            self.state.observe(&frame.msg);
        }
        let verdict = self.guard.on_client(frame, &self.state);
        self.resume = matches!(verdict, Verdict::Wait(_));
        verdict
    }
}

/// The stages of the server → client pipeline, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ServerStep {
    /// The state notes the message.
    Observe,
    /// Statement outcomes.
    Record,
    /// Refusals put in place.
    Guard,
    /// Masking and captured rows.
    Mask,
}

/// Server → client: state, then record, guard, mask.
pub(crate) struct ServerPipeline<R, G, M> {
    /// The server half of the protocol state.
    pub state: AnsweredState,
    /// Statement outcomes.
    pub record: R,
    /// Refusals in place of markers' errors; `client_encoding` watch.
    pub guard: G,
    /// Result masking and captured rows.
    pub mask: M,
    /// Where the message now shown again resumes.
    resume: ServerStep,
}

impl<R: ServerStage, G: ServerStage, M: ServerStage> ServerPipeline<R, G, M> {
    /// The pipeline over `state` and the three stages.
    pub(crate) fn new(state: AnsweredState, record: R, guard: G, mask: M) -> Self {
        ServerPipeline {
            state,
            record,
            guard,
            mask,
            resume: ServerStep::Observe,
        }
    }

    /// Runs `step` unless the message resumes after it; `Some` ends the
    /// pipeline for this message.
    #[inline]
    fn run(&mut self, step: ServerStep, frame: &ServerFrame<'_>) -> Option<Verdict> {
        if step < self.resume {
            return None;
        }
        let verdict = match step {
            ServerStep::Observe => {
                self.state.observe(&frame.msg);
                Verdict::Forward
            }
            ServerStep::Record => self.record.on_server(frame, &self.state),
            ServerStep::Guard => self.guard.on_server(frame, &self.state),
            ServerStep::Mask => self.mask.on_server(frame, &self.state),
        };
        match verdict {
            Verdict::Forward => None,
            Verdict::Wait(pending) => {
                self.resume = step;
                Some(Verdict::Wait(pending))
            }
            other => Some(other),
        }
    }
}

impl<R: ServerStage, G: ServerStage, M: ServerStage> FrameHook<FromServer>
    for ServerPipeline<R, G, M>
{
    #[inline]
    fn on_frame(&mut self, frame: &ServerFrame<'_>) -> Verdict {
        let steps = [
            ServerStep::Observe,
            ServerStep::Record,
            ServerStep::Guard,
            ServerStep::Mask,
        ];
        let resume = self.resume;
        self.resume = ServerStep::Observe;
        let verdict = steps.into_iter().find_map(|step| {
            if step < resume {
                return None;
            }
            self.run(step, frame)
        });
        verdict.unwrap_or(Verdict::Forward)
    }
}
