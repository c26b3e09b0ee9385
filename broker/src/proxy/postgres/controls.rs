//! The seam between a session's live controls
//! ([`crate::session::controls`]) and this proxy's hooks: where the
//! guardrails and the masker of each statement come from, and what ends a
//! session from outside (a revoked grant, a policy that no longer allows the
//! user).
//!
//! The hooks keep their current guardrails / masking context and ask here,
//! before each statement (client frames; server frames other than row data),
//! whether the controls changed; when they did, the guardrails are rebuilt
//! through the proxy's guard book and the masker from the proxy's masking
//! sets. A change that arrives in the middle of a result applies from the
//! next result on. A session served without live controls
//! ([`super::PgProxy::serve`]) keeps what it started with.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::MaskingRegistry;
use super::masked::MaskContext;
use super::wire::build::fatal_message;
use crate::guard::{GuardBook, Guardrails};
use crate::session::controls::{Controls, Effective, LiveControls};

/// The last controls a hook built from, to notice a new version.
#[derive(Debug)]
struct Seen {
    rx: watch::Receiver<Effective>,
    last: Option<Arc<Controls>>,
}

impl Seen {
    fn new(live: &LiveControls) -> Seen {
        let rx = live.subscribe();
        let last = rx.borrow().controls().cloned();
        Seen { rx, last }
    }

    /// The controls, when they differ from the ones last built from.
    /// An ended session keeps its last controls (the relay ends it).
    fn newer(&mut self) -> Option<Arc<Controls>> {
        let now = self.rx.borrow().controls().cloned()?;
        if self.last.as_ref().is_some_and(|l| Arc::ptr_eq(l, &now)) {
            return None;
        }
        self.last = Some(now.clone());
        Some(now)
    }
}

/// Where the guardrails hook gets each statement's guardrails.
#[derive(Debug)]
pub(crate) struct LiveGuard {
    seen: Seen,
    book: Arc<GuardBook>,
    connection: String,
}

impl LiveGuard {
    pub(super) fn new(live: &LiveControls, book: Arc<GuardBook>, connection: &str) -> LiveGuard {
        LiveGuard {
            seen: Seen::new(live),
            book,
            connection: connection.to_owned(),
        }
    }

    /// `Some(guardrails)` when the session's guardrails changed since the
    /// last call (`Some(None)`: none apply now).
    pub(crate) fn changed(&mut self) -> Option<Option<Arc<Guardrails>>> {
        let controls = self.seen.newer()?;
        match self
            .book
            .for_session(&self.connection, &controls.guardrails)
        {
            Ok(g) => Some(g),
            Err(e) => {
                // Policy and config are validated against the same names;
                // keep the guardrails in force rather than none.
                tracing::error!(error = %e, "new guardrails of the session cannot be built; the previous ones stay");
                None
            }
        }
    }
}

/// Where the masking hook gets each result's masker.
#[derive(Debug)]
pub(crate) struct LiveMasker {
    seen: Seen,
    registry: Arc<MaskingRegistry>,
}

impl LiveMasker {
    pub(super) fn new(live: &LiveControls, registry: Arc<MaskingRegistry>) -> LiveMasker {
        LiveMasker {
            seen: Seen::new(live),
            registry,
        }
    }

    /// A masking context with the session's new sets, when they changed
    /// since the last call (catalog and recording as in `current`).
    pub(crate) fn changed(&mut self, current: &Arc<MaskContext>) -> Option<Arc<MaskContext>> {
        let controls = self.seen.newer()?;
        let mut sets: Vec<Arc<crate::mask::MaskSet>> = Vec::new();
        for name in &controls.masking {
            let Some(set) = self.registry.sets.get(name) else {
                tracing::error!(set = %name, "new masking set of the session is not defined; the previous masking stays");
                return None;
            };
            if !sets.iter().any(|s| s.name == set.name) {
                sets.push(set.clone());
            }
        }
        Some(Arc::new(MaskContext {
            masker: crate::mask::Masker::new(sets),
            catalog: current.catalog.clone(),
            log: current.log.clone(),
            connection: current.connection.clone(),
        }))
    }
}

/// Resolves, with the FATAL to send, when the session is ended from outside.
pub(crate) type EndSignal = Pin<Box<dyn Future<Output = BytesMut> + Send>>;

/// What ends the session from outside: the grant's revocation (answered
/// with `revoked_fatal`) and, with live controls, a policy that no longer
/// allows the user (answered with a FATAL naming the reason). `None` when
/// nothing can.
pub(super) fn end_signal(
    grant: Option<CancellationToken>,
    revoked_fatal: BytesMut,
    live: Option<&LiveControls>,
) -> Option<EndSignal> {
    let live = live.cloned();
    if grant.is_none() && live.is_none() {
        return None;
    }
    Some(Box::pin(async move {
        let revoked = async move {
            match grant {
                Some(token) => token.cancelled_owned().await,
                None => std::future::pending().await,
            }
        };
        let denied = async move {
            match live {
                Some(live) => live.ended().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = revoked => revoked_fatal,
            why = denied => fatal_message(
                "57P01",
                &format!("hoop: {why}; your session was ended"),
                None,
            ),
        }
    }))
}
