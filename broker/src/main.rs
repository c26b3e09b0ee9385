//! The `hoop-broker` binary: `serve --config FILE` and `dev`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hoop_broker::app::Broker;
use hoop_broker::config::Config;
use hoop_broker::dev::{self, DevOptions};
use tokio_util::sync::CancellationToken;

/// The hoop broker: identity, policy, credential injection and recording in
/// the data path between people (or CI jobs) and production systems.
#[derive(Parser)]
#[command(name = "hoop-broker", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker from a config file (see docs/config.md).
    #[command(
        after_help = "Example:\n  hoop-broker serve --config /etc/hoop/broker.toml\n  \
                            hoop-broker serve --config broker.toml --check   # validate only"
    )]
    Serve {
        /// The broker config file (TOML).
        #[arg(long, short, value_name = "FILE", env = "HOOP_BROKER_CONFIG")]
        config: PathBuf,
        /// Validate the config (and credential references), then exit.
        #[arg(long)]
        check: bool,
    },
    /// Everything for a local try-out in one command: broker, embedded store,
    /// development identity provider, and a throwaway demo PostgreSQL.
    #[command(after_help = "Then, in another terminal:\n  hoopctl login\n  \
                            hoopctl connect demo-pg -- psql")]
    Dev {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = dev::DEFAULT_LISTEN)]
        listen: String,
        /// Data directory [default: ~/.local/share/hoop-broker/dev].
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Use this PostgreSQL instead of starting a throwaway one
        /// (postgres://USER:PASSWORD@HOST:PORT/DB; its credentials stay in the broker).
        #[arg(
            long,
            value_name = "URL",
            env = "HOOP_DEV_POSTGRES_URL",
            hide_env_values = true
        )]
        postgres_url: Option<String>,
    },
    /// Internal: how `dev` starts its PostgreSQL so that it dies with the
    /// broker (see `hoop_broker::dev::postgres::exec_child`).
    #[command(name = "pg-child", hide = true)]
    PgChild {
        /// The broker's process id.
        #[arg(long)]
        parent: u32,
        /// The server binary and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<std::ffi::OsString>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Everything the broker writes holds audit or session data: owner-only.
    hoop_broker::fsperm::restrict_umask();
    if let Command::PgChild { parent, command } = &cli.command {
        let (program, args) = command.split_first().unzip();
        let error = match program {
            Some(program) => dev::postgres::exec_child(*parent, program, args.unwrap_or_default()),
            None => "no program".to_owned(),
        };
        eprintln!("hoop-broker pg-child: {error}");
        return ExitCode::FAILURE;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOOP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal (https://no-color.org):
        // a log file or journald gets plain text, no escape codes.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hoop-broker: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hoop-broker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone())?;
    match cli.command {
        Command::Serve { config, check } => {
            let cfg = Config::load(&config)?;
            let broker = Broker::bind(cfg).await?;
            if check {
                println!("{}: valid", config.display());
                return Ok(());
            }
            println!("hoop-broker listening on {}", broker.public_url);
            broker.run(shutdown).await;
            Ok(())
        }
        Command::PgChild { .. } => anyhow::bail!("pg-child runs before the runtime starts"),
        Command::Dev {
            listen,
            data_dir,
            postgres_url,
        } => {
            dev::run(
                DevOptions {
                    listen,
                    data_dir,
                    postgres_url,
                },
                shutdown,
            )
            .await
        }
    }
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM.
fn spawn_signal_handler(shutdown: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    Ok(())
}
