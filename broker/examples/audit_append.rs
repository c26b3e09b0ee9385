//! Micro-benchmark of the audit append path: N concurrent writers, each
//! appending statement records (`AuditLog::append`, the call a Postgres
//! statement waits on before it is forwarded) as fast as acknowledgements
//! come back, on the default SQLite store in a temporary data directory.
//!
//! ```sh
//! cargo run --release -p hoop-broker --example audit_append            # 1, 4, 16, 64 writers, 3 s each
//! cargo run --release -p hoop-broker --example audit_append -- 16 64   # chosen writer counts
//! AUDIT_BENCH_SECS=10 cargo run --release -p hoop-broker --example audit_append
//! ```
//!
//! It prints records per second, the mean wait of one append, and the CPU
//! time (user + system, the whole process) per record. A rate that stops
//! growing with writers while CPU is left is a serial step (bench/README in
//! the project root explains how to read it; see also issue #16).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hoop_broker::audit::{AuditLog, NewRecord};
use hoop_broker::config::{AuditConfig, StoreConfig};

fn cpu_seconds() -> f64 {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF);
    usage.map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
}

fn record(writer: usize, n: u64) -> NewRecord {
    let mut r = NewRecord::now("statement.allowed");
    r.actor = Some("bench".into());
    r.connection = Some("demo-pg".into());
    r.session = Some(format!("session-{writer}"));
    r.detail = serde_json::json!({
        "sql": format!("SELECT abalance FROM pgbench_accounts WHERE aid = {n}"),
        "protocol": "simple",
        "rule": null,
    });
    r
}

async fn run(writers: usize, secs: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let log = Arc::new(
        AuditLog::open(&AuditConfig::default(), &StoreConfig::default(), dir.path()).await?,
    );
    let count = Arc::new(AtomicU64::new(0));
    let waited_ns = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let (log, count, waited_ns) = (log.clone(), count.clone(), waited_ns.clone());
        tasks.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                log.append(record(w, n)).await?;
                waited_ns.fetch_add(
                    u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
                count.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let records = count.load(Ordering::Relaxed);
    let per = |x: f64| {
        if records == 0 {
            0.0
        } else {
            x / records as f64
        }
    };
    println!(
        "{writers:>8} {records:>10} {:>12.0} {:>14.1} {:>14.1}",
        records as f64 / wall,
        per(waited_ns.load(Ordering::Relaxed) as f64 / 1e3),
        per(cpu * 1e6),
    );
    log.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs = std::env::var("AUDIT_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mut counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if counts.is_empty() {
        counts = vec![1, 4, 16, 64];
    }
    println!(
        "audit append, SQLite store, {secs}s per run, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:>8} {:>10} {:>12} {:>14} {:>14}",
        "writers", "records", "records/s", "wait µs/rec", "cpu µs/rec"
    );
    for writers in counts {
        run(writers, secs).await?;
    }
    Ok(())
}
