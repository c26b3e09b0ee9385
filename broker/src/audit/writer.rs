//! The group-commit writer: one writer owns all appends of this broker.
//!
//! Callers put an event on a bounded queue, with a oneshot for the
//! acknowledgement when they wait for the commit. The writer takes
//! everything queued (up to [`MAX_BATCH`]), appends it in one transaction
//! and acknowledges each event with its seq, or with the error. Many
//! sessions' statements thus share one commit instead of paying one each,
//! and the chain is built by one writer per broker (brokers sharing
//! PostgreSQL serialize on the table lock inside the transaction).
//!
//! Two kinds of writer drain the same queue:
//!
//! - a dedicated OS thread, for the backend that appends synchronously
//!   ([`super::AuditBackend::Sqlite`]). It owns the batch loop and
//!   calls the backend directly, so a statement costs one wake of the
//!   thread and one wake of the waiting task: no hop through a writer task
//!   and tokio's blocking pool (those context switches were most of the
//!   broker's time under load).
//! - a tokio task, for the async backend ([`super::AuditBackend::Postgres`]).
//!
//! With the SQLite backend when its commits do not wait for the disk
//! (`synchronous = NORMAL`), a caller that finds nothing waiting in the
//! queue and the store free commits its own event on its own thread
//! (`WriterHandle::append_now`): group commit's uncontended case, with no
//! thread hop at all. Callers that arrive meanwhile queue for the writer.
//!
//! Best-effort events ([`WriterHandle::append_lazy`]: statement outcomes)
//! do not wake the writer: they ride in the next transaction that a waited
//! event starts, or are written on their own at most [`LAZY_DELAY`] after
//! they were queued. They are chained records like any other; only the
//! moment they are committed is relaxed, so a crash may lose the last
//! [`LAZY_DELAY`] of them (never a statement record).
//!
//! At close the writer writes what was queued before the close, signs a
//! checkpoint over the tip, and ends; appends after the close fail with
//! [`AuditError::Closed`].

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, oneshot};

use super::postgres::PgAuditBackend;
use super::sqlite::SqliteAuditBackend;
use super::{AuditBackend, AuditError, NewRecord, Sealer, now_ms};

/// Events queued at most (callers of `append` wait for room beyond this).
pub const QUEUE: usize = 8192;
/// Events per transaction at most.
pub const MAX_BATCH: usize = 1024;
/// How long an append may take before its caller gives up (the statement it
/// describes is then refused).
pub const APPEND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a best-effort event waits for a transaction to ride in.
pub const LAZY_DELAY: Duration = Duration::from_millis(50);

type Ack = oneshot::Sender<Result<u64, AuditError>>;

struct Item {
    record: NewRecord,
    ack: Option<Ack>,
}

/// How the writer waits when it has nothing to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Idle {
    /// Busy: it looks at the queue before it waits again.
    No,
    /// Just wrote: waits at most [`LAZY_DELAY`] (a lazy event needs no wake).
    Linger,
    /// Quiet for a while: waits for any event.
    Deep,
}

struct State {
    items: VecDeque<Item>,
    /// Queued items somebody waits for.
    waited: usize,
    /// When the oldest queued lazy item was queued (none queued: `None`).
    lazy_since: Option<Instant>,
    /// Callers of `close`, told when the writer has stopped.
    closers: Vec<oneshot::Sender<()>>,
    /// The writer has stopped.
    stopped: bool,
    /// Every handle is gone: write what is queued and stop.
    dropped: bool,
    /// No more events accepted.
    closed: bool,
    idle: Idle,
    /// An append made by a caller left housekeeping for the writer.
    maintain: bool,
}

/// How a push wakes the writer.
enum Wake {
    Thread(Condvar),
    Task(Notify),
}

struct Queue {
    state: Mutex<State>,
    wake: Wake,
    /// One permit per free queue slot.
    room: Semaphore,
}

impl Queue {
    fn new(wake: Wake) -> Queue {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                waited: 0,
                lazy_since: None,
                closers: Vec::new(),
                stopped: false,
                dropped: false,
                closed: false,
                idle: Idle::No,
                maintain: false,
            }),
            wake,
            room: Semaphore::new(QUEUE),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notify(&self) {
        match &self.wake {
            Wake::Thread(cv) => cv.notify_one(),
            Wake::Task(n) => n.notify_one(),
        }
    }

    /// Queues `item`, whose slot (permit) the caller already took.
    fn push(&self, item: Item) -> Result<(), AuditError> {
        let mut st = self.lock();
        if st.closed {
            drop(st);
            self.room.add_permits(1);
            return Err(AuditError::Closed);
        }
        let wake = if item.ack.is_some() {
            st.waited += 1;
            st.idle != Idle::No
        } else {
            st.lazy_since.get_or_insert_with(Instant::now);
            st.idle == Idle::Deep || (st.idle != Idle::No && st.items.len() + 1 >= MAX_BATCH)
        };
        st.items.push_back(item);
        if wake {
            st.idle = Idle::No;
        }
        drop(st);
        if wake {
            self.notify();
        }
        Ok(())
    }

    /// Stops accepting events; `f` says what the writer does with the rest.
    fn shut(&self, f: impl FnOnce(&mut State)) {
        let mut st = self.lock();
        st.closed = true;
        f(&mut st);
        st.idle = Idle::No;
        drop(st);
        self.room.close();
        self.notify();
    }
}

/// What the writer does next.
enum Next {
    /// Append these.
    Batch(Batch),
    /// Wait for a push, at most this long.
    Wait(Option<Duration>),
    /// Run the backend's housekeeping.
    Maintain,
    /// Every handle is gone and the queue is empty.
    Stop,
}

struct Batch {
    records: Vec<NewRecord>,
    acks: Vec<Option<Ack>>,
    /// The close was asked and this is the last batch: sign a checkpoint
    /// over the tip, then stop.
    last: bool,
}

impl State {
    /// Decides under the lock; `wrote` says the writer just wrote a batch.
    fn next(&mut self, wrote: bool) -> Next {
        if std::mem::take(&mut self.maintain) {
            self.idle = Idle::No;
            return Next::Maintain;
        }
        let closing = !self.closers.is_empty();
        if self.items.is_empty() {
            if closing {
                return Next::Batch(self.take());
            }
            if self.dropped {
                return Next::Stop;
            }
            self.idle = if wrote { Idle::Linger } else { Idle::Deep };
            return Next::Wait((self.idle == Idle::Linger).then_some(LAZY_DELAY));
        }
        let due = self.waited > 0 || closing || self.dropped || self.items.len() >= MAX_BATCH;
        if !due && let Some(since) = self.lazy_since {
            let waited = since.elapsed();
            if waited < LAZY_DELAY {
                self.idle = Idle::Linger;
                return Next::Wait(Some(LAZY_DELAY - waited));
            }
        }
        Next::Batch(self.take())
    }

    fn take(&mut self) -> Batch {
        let n = self.items.len().min(MAX_BATCH);
        let mut records = Vec::with_capacity(n);
        let mut acks = Vec::with_capacity(n);
        for item in self.items.drain(..n) {
            if item.ack.is_some() {
                self.waited = self.waited.saturating_sub(1);
            }
            records.push(item.record);
            acks.push(item.ack);
        }
        if self.items.iter().all(|i| i.ack.is_some()) {
            self.lazy_since = None;
        }
        let last = self.items.is_empty() && !self.closers.is_empty();
        self.idle = Idle::No;
        Batch {
            records,
            acks,
            last,
        }
    }
}

/// What [`WriterHandle::append_now`] did.
enum Now {
    /// It appended (or tried, and this is the error).
    Done(Result<u64, AuditError>),
    /// It could not start at once: the record goes through the queue.
    Queue(NewRecord),
}

/// Closes the queue when the last handle goes.
struct Owner {
    queue: Arc<Queue>,
    /// For appends on the caller's thread (the SQLite backend).
    now: Option<(SqliteAuditBackend, Arc<Sealer>)>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.queue.shut(|st| st.dropped = true);
    }
}

/// Sends events to the writer.
#[derive(Clone)]
pub struct WriterHandle {
    owner: Arc<Owner>,
}

impl std::fmt::Debug for WriterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterHandle").finish_non_exhaustive()
    }
}

impl WriterHandle {
    fn queue(&self) -> &Queue {
        &self.owner.queue
    }

    /// Appends and waits for the commit.
    pub async fn append(&self, record: NewRecord) -> Result<u64, AuditError> {
        let record = match self.append_now(record) {
            Now::Done(committed) => return committed,
            Now::Queue(record) => record,
        };
        let (ack, done) = oneshot::channel();
        let work = async {
            self.queue()
                .room
                .acquire()
                .await
                .map_err(|_| AuditError::Closed)?
                .forget();
            self.queue().push(Item {
                record,
                ack: Some(ack),
            })?;
            done.await.map_err(|_| AuditError::Closed)?
        };
        tokio::time::timeout(APPEND_TIMEOUT, work)
            .await
            .unwrap_or(Err(AuditError::Timeout(APPEND_TIMEOUT)))
    }

    /// Commits `record` on the caller's thread, when nothing waits in the
    /// queue and the store can start at once and commits without waiting
    /// for the disk (SQLite with `synchronous = NORMAL`: some tens of
    /// microseconds). This is group commit's uncontended case: the first
    /// caller to find the writer with nothing to do writes for itself
    /// (with the best-effort events queued before it), and saves the two
    /// thread wake-ups of the round trip through the writer; callers that
    /// arrive meanwhile queue up for the writer as before. Gives `record`
    /// back when it cannot.
    fn append_now(&self, record: NewRecord) -> Now {
        let Some((blocking, sealer)) = &self.owner.now else {
            return Now::Queue(record);
        };
        let queue = self.queue();
        let mut slot = Some(record);
        let mut lazy = 0;
        let mut wake_writer = false;
        let result = blocking.try_append_now(&mut || {
            let mut st = queue.lock();
            if st.closed || st.waited > 0 {
                return None;
            }
            let mine = slot.take()?;
            // A writer that went quiet learns of this append, so that it can
            // plan the backend's work for it (a journal's move into the
            // tables): it looks once this append is done (the backend is
            // held until then).
            if st.idle == Idle::Deep {
                st.idle = Idle::No;
                wake_writer = true;
            }
            // Only best-effort events are queued: they go first, in order.
            let n = st.items.len().min(MAX_BATCH - 1);
            let mut records: Vec<NewRecord> = Vec::with_capacity(n + 1);
            records.extend(st.items.drain(..n).map(|i| i.record));
            if st.items.is_empty() {
                st.lazy_since = None;
            }
            drop(st);
            records.push(mine);
            lazy = n;
            let sealer = sealer.clone();
            Some(Box::new(move |tip| {
                sealer.seal(tip, records, false, now_ms())
            }))
        });
        let result = match (result, slot) {
            (Some(result), _) => result,
            (None, Some(record)) => return Now::Queue(record),
            // `ready` takes the record only to append it.
            (None, None) => return Now::Done(Err(AuditError::Closed)),
        };
        queue.room.add_permits(lazy);
        if wake_writer {
            queue.notify();
        }
        if blocking.maintenance_due() {
            let mut st = queue.lock();
            st.maintain = true;
            let wake = st.idle != Idle::No;
            st.idle = Idle::No;
            drop(st);
            if wake {
                queue.notify();
            }
        }
        Now::Done(match result {
            Ok(sealed) => sealed
                .records
                .last()
                .map(|r| r.seq)
                .ok_or_else(|| AuditError::Corrupt("an append stored nothing".into())),
            Err(e) => {
                tracing::error!(records = lazy + 1, "audit append failed: {e}");
                Err(e)
            }
        })
    }

    /// Queues without waiting; the event is committed with the next
    /// transaction, at most [`LAZY_DELAY`] later.
    pub fn append_lazy(&self, record: NewRecord) -> Result<(), AuditError> {
        match self.queue().room.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(tokio::sync::TryAcquireError::NoPermits) => return Err(AuditError::Overloaded),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(AuditError::Closed),
        }
        self.queue().push(Item { record, ack: None })
    }

    /// Writes what is queued, signs the final checkpoint, stops the writer.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        // A writer that stopped drops `tx` at once: nothing to wait for.
        self.queue().shut(|st| {
            if !st.stopped {
                st.closers.push(tx);
            }
        });
        let _ = rx.await;
    }
}

/// After the last batch: tells every caller of `close`.
fn finish(queue: &Queue) {
    let closers = {
        let mut st = queue.lock();
        st.stopped = true;
        std::mem::take(&mut st.closers)
    };
    for c in closers {
        let _ = c.send(());
    }
}

/// Starts the writer: a thread for the SQLite backend (it appends
/// synchronously), a task on `tasks` for PostgreSQL. Either keeps `tasks`
/// open until it ends.
pub fn spawn(
    backend: AuditBackend,
    sealer: Arc<Sealer>,
    tasks: &tokio_util::task::TaskTracker,
) -> Result<WriterHandle, AuditError> {
    let (queue, now) = match backend {
        AuditBackend::Sqlite(backend) => {
            let queue = Arc::new(Queue::new(Wake::Thread(Condvar::new())));
            let q = queue.clone();
            let token = tasks.token();
            let now = Some((backend.clone(), sealer.clone()));
            std::thread::Builder::new()
                .name("audit-writer".into())
                .spawn(move || {
                    run_blocking(&q, &backend, &sealer);
                    drop(token);
                })
                .map_err(|e| AuditError::Sqlite(format!("cannot start the writer thread: {e}")))?;
            (queue, now)
        }
        AuditBackend::Postgres(backend) => {
            let queue = Arc::new(Queue::new(Wake::Task(Notify::new())));
            tasks.spawn(run_async(queue.clone(), backend, sealer));
            (queue, None)
        }
    };
    Ok(WriterHandle {
        owner: Arc::new(Owner { queue, now }),
    })
}

fn run_blocking(queue: &Queue, backend: &SqliteAuditBackend, sealer: &Arc<Sealer>) {
    let Wake::Thread(cv) = &queue.wake else {
        return;
    };
    let mut wrote = false;
    'outer: loop {
        // The backend's own work first, outside the queue's lock (an append
        // on a caller's thread holds the backend, then takes the queue).
        if backend.maintenance_due() {
            backend.after_batch();
        }
        let cap = backend.maintenance_in();
        let batch = {
            let mut st = queue.lock();
            loop {
                match st.next(wrote) {
                    Next::Batch(b) => break b,
                    Next::Stop => {
                        drop(st);
                        backend.flush();
                        queue.lock().stopped = true;
                        return;
                    }
                    Next::Maintain => {
                        drop(st);
                        backend.after_batch();
                        st = queue.lock();
                        wrote = false;
                        st.idle = Idle::No;
                        continue;
                    }
                    Next::Wait(wait) => {
                        st = match (wait, cap) {
                            (None, None) => cv.wait(st).unwrap_or_else(|p| p.into_inner()),
                            (Some(d), None) | (None, Some(d)) => {
                                cv.wait_timeout(st, d).unwrap_or_else(|p| p.into_inner()).0
                            }
                            (Some(a), Some(b)) => {
                                cv.wait_timeout(st, a.min(b))
                                    .unwrap_or_else(|p| p.into_inner())
                                    .0
                            }
                        };
                        wrote = false;
                        st.idle = Idle::No;
                        continue 'outer;
                    }
                }
            }
        };
        queue.room.add_permits(batch.records.len());
        wrote = !batch.records.is_empty();
        let Batch {
            records,
            acks,
            last,
        } = batch;
        let s = sealer.clone();
        let n = records.len();
        let result =
            backend.append_blocking(Box::new(move |tip| s.seal(tip, records, last, now_ms())));
        acknowledge(result, acks, n);
        backend.after_batch();
        if last {
            backend.flush();
            finish(queue);
            return;
        }
    }
}

async fn run_async(queue: Arc<Queue>, backend: Arc<PgAuditBackend>, sealer: Arc<Sealer>) {
    let Wake::Task(notify) = &queue.wake else {
        return;
    };
    let mut wrote = false;
    loop {
        let next = queue.lock().next(wrote);
        let batch = match next {
            Next::Batch(b) => b,
            Next::Stop => {
                queue.lock().stopped = true;
                return;
            }
            Next::Maintain => continue,
            Next::Wait(None) => {
                notify.notified().await;
                wrote = false;
                continue;
            }
            Next::Wait(Some(d)) => {
                let _ = tokio::time::timeout(d, notify.notified()).await;
                wrote = false;
                continue;
            }
        };
        queue.room.add_permits(batch.records.len());
        wrote = !batch.records.is_empty();
        let Batch {
            records,
            acks,
            last,
        } = batch;
        let s = sealer.clone();
        let n = records.len();
        let result = backend
            .append(Box::new(move |tip| s.seal(tip, records, last, now_ms())))
            .await;
        acknowledge(result, acks, n);
        if last {
            finish(&queue);
            return;
        }
    }
}

fn acknowledge(result: Result<super::Sealed, AuditError>, acks: Vec<Option<Ack>>, n: usize) {
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
}
