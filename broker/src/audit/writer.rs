//! The group-commit writer: one task owns all appends of this broker.
//!
//! Callers send an event on a bounded channel with a oneshot for the
//! acknowledgement. The task takes the first event, then everything else
//! already queued (up to [`MAX_BATCH`]), appends them in one transaction and
//! acknowledges each with its seq, or with the error to all of them. Many
//! sessions' statements thus share one commit (one fsync) instead of paying
//! one each, and the chain is built by one writer per broker (brokers sharing
//! PostgreSQL serialize on the table lock inside the transaction).
//!
//! At close the task writes what was queued before the close, signs a
//! checkpoint over the tip, fails everything queued after with
//! [`AuditError::Closed`], and ends.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{AuditBackend, AuditError, NewRecord, Sealer, now_ms};

/// Events queued at most (callers of `append` wait for room beyond this).
pub const QUEUE: usize = 8192;
/// Events per transaction at most.
pub const MAX_BATCH: usize = 1024;
/// How long an append may take before its caller gives up (the statement it
/// describes is then refused).
pub const APPEND_TIMEOUT: Duration = Duration::from_secs(30);

type Ack = oneshot::Sender<Result<u64, AuditError>>;

enum Msg {
    Append(NewRecord, Option<Ack>),
    Close(oneshot::Sender<()>),
}

/// Sends events to the writer task.
#[derive(Clone, Debug)]
pub struct WriterHandle {
    tx: mpsc::Sender<Msg>,
}

impl WriterHandle {
    /// Appends and waits for the commit.
    pub async fn append(&self, record: NewRecord) -> Result<u64, AuditError> {
        let (ack, done) = oneshot::channel();
        let work = async {
            self.tx
                .send(Msg::Append(record, Some(ack)))
                .await
                .map_err(|_| AuditError::Closed)?;
            done.await.map_err(|_| AuditError::Closed)?
        };
        tokio::time::timeout(APPEND_TIMEOUT, work)
            .await
            .unwrap_or(Err(AuditError::Timeout(APPEND_TIMEOUT)))
    }

    /// Queues without waiting.
    pub fn append_nowait(&self, record: NewRecord) -> Result<(), AuditError> {
        self.tx
            .try_send(Msg::Append(record, None))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => AuditError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => AuditError::Closed,
            })
    }

    /// Flushes, signs the final checkpoint, stops the task.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Starts the writer on `tasks`.
pub fn spawn(
    backend: Arc<dyn AuditBackend>,
    sealer: Arc<Sealer>,
    tasks: &tokio_util::task::TaskTracker,
) -> WriterHandle {
    let (tx, rx) = mpsc::channel(QUEUE);
    tasks.spawn(run(rx, backend, sealer));
    WriterHandle { tx }
}

async fn run(mut rx: mpsc::Receiver<Msg>, backend: Arc<dyn AuditBackend>, sealer: Arc<Sealer>) {
    loop {
        let mut records = Vec::new();
        let mut acks = Vec::new();
        let mut close = None;
        match rx.recv().await {
            Some(Msg::Append(r, ack)) => {
                records.push(r);
                acks.push(ack);
            }
            Some(Msg::Close(done)) => close = Some(done),
            // Every handle is gone: nothing can be appended any more.
            None => return,
        }
        while close.is_none() && records.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Append(r, ack)) => {
                    records.push(r);
                    acks.push(ack);
                }
                Ok(Msg::Close(done)) => close = Some(done),
                Err(_) => break,
            }
        }
        let at_end = close.is_some();
        let n = records.len();
        let s = sealer.clone();
        let result = backend
            .append(Box::new(move |tip| s.seal(tip, &records, at_end, now_ms())))
            .await;
        match result {
            Ok(sealed) => {
                for (ack, r) in acks.into_iter().zip(&sealed.records) {
                    if let Some(ack) = ack {
                        let _ = ack.send(Ok(r.seq));
                    }
                }
                for c in &sealed.checkpoints {
                    tracing::debug!(number = c.number, seq = c.seq, "audit checkpoint signed");
                }
            }
            Err(e) => {
                tracing::error!(records = n, "audit append failed: {e}");
                for ack in acks.into_iter().flatten() {
                    let _ = ack.send(Err(e.clone()));
                }
            }
        }
        if let Some(done) = close {
            rx.close();
            while let Ok(msg) = rx.try_recv() {
                match msg {
                    Msg::Append(_, Some(ack)) => {
                        let _ = ack.send(Err(AuditError::Closed));
                    }
                    Msg::Append(_, None) => {}
                    Msg::Close(other) => {
                        let _ = other.send(());
                    }
                }
            }
            let _ = done.send(());
            return;
        }
    }
}
