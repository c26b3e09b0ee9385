//! `hoopctl policy get|diff|apply|test`: the access policy as code.
//!
//! `apply` is check-then-swap: `POST /v1/policy/check` validates the document
//! and diffs it against the policy in force (version N); the person (or
//! `--yes`) confirms that diff; `PUT /v1/policy` with `expected_version = N`
//! applies it only if nobody changed the policy in between, so what was
//! reviewed is exactly what lands. An invalid document changes nothing.
//!
//! A document is one TOML file or a directory: `-f DIR` sends the `*.toml`
//! files in it (sorted by name, other files ignored) as one document, which
//! the broker validates across files, diffs file by file and stores as one
//! policy version. `policy get --out-dir DIR` writes such a policy back as
//! files.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::Path;

use anyhow::Context as _;
use hoop_shared::api::{
    ApplyPolicyRequest, ErrorCode, PolicyCheckRequest, PolicyCheckResponse, PolicyInfo,
    PolicyTestRequest,
};
use hoop_shared::policy::{
    Decision, MAX_POLICY_LEN, Outcome, PolicyFile, PolicySource, check_file_name,
};

use super::{Context, describe_time};
use crate::api::ApiError;
use crate::auth::{AuthError, Credentials, now_unix};
use crate::cli::{
    OutputFormat, PolicyApplyArgs, PolicyArgs, PolicyCommand, PolicyFileArgs, PolicyFormat,
    PolicyGetArgs, PolicyTestArgs,
};
use crate::render;

/// Largest policy file read (the broker's limit for a whole document).
const MAX_POLICY_FILE: u64 = MAX_POLICY_LEN as u64;

/// Runs `hoopctl policy`.
pub async fn run(ctx: &Context, args: &PolicyArgs) -> anyhow::Result<u8> {
    match &args.command {
        PolicyCommand::Get(a) => get(ctx, a).await,
        PolicyCommand::Diff(a) => diff(ctx, a).await,
        PolicyCommand::Apply(a) => apply(ctx, a).await,
        PolicyCommand::Test(a) => test(ctx, a).await,
    }
}

/// The policy in force as a document: its files, or its one text.
fn source_of(info: &PolicyInfo) -> PolicySource {
    if info.files.is_empty() {
        PolicySource::Single(info.text.clone())
    } else {
        PolicySource::Files(info.files.clone())
    }
}

async fn get(ctx: &Context, args: &PolicyGetArgs) -> anyhow::Result<u8> {
    let creds = ctx.credentials()?;
    let api = creds.api().clone();
    let info = creds
        .call(|token| {
            let api = api.clone();
            async move { api.policy(&token).await }
        })
        .await
        .context("cannot read the policy")?;
    if let Some(dir) = &args.out_dir {
        return write_out(dir, &info, args.force);
    }
    let mut out = std::io::stdout();
    match args.output {
        PolicyFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &info)?;
            writeln!(out)?;
        }
        PolicyFormat::Toml => {
            // stdout is the document alone, so `policy get > policy.toml`
            // round-trips (a directory's files each follow a `# file: NAME`
            // line; `--out-dir` writes them back); where it came from goes
            // to stderr.
            let source = source_of(&info);
            let files = match &source {
                PolicySource::Single(_) => String::new(),
                PolicySource::Files(f) => format!(" ({} files)", f.len()),
            };
            eprintln!(
                "# policy version {}{files}, applied by {} {}",
                info.version,
                render::clean(&info.applied_by),
                describe_time(info.applied_at, now_unix())
            );
            let text = source.display_text();
            out.write_all(text.as_bytes())?;
            if !text.is_empty() && !text.ends_with('\n') {
                writeln!(out)?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}

/// `policy get --out-dir DIR`: writes the policy's files into `dir` (a
/// one-file policy as `policy.toml`). Every file is checked before any is
/// written, so a refusal leaves the directory as it was.
fn write_out(dir: &Path, info: &PolicyInfo, force: bool) -> anyhow::Result<u8> {
    let source = source_of(info);
    let files = source.named_files();
    // The names come from the broker: never let one leave the directory.
    for (name, _) in &files {
        check_file_name(name).map_err(|e| anyhow::anyhow!("the broker sent {e}"))?;
    }
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!("{} exists and is not a directory", dir.display());
    }
    let existing: Vec<String> = files
        .iter()
        .filter(|(name, _)| dir.join(name).symlink_metadata().is_ok())
        .map(|(name, _)| dir.join(name).display().to_string())
        .collect();
    if !existing.is_empty() && !force {
        anyhow::bail!(
            "not overwriting {}; nothing was written. Pass --force to overwrite, or choose \
             another directory",
            existing.join(", ")
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in &files {
        let path = dir.join(name);
        let mut open = std::fs::OpenOptions::new();
        open.write(true);
        if force {
            open.create(true).truncate(true);
        } else {
            // Refuses a file that appeared since the check above.
            open.create_new(true);
        }
        open.open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    // Other *.toml files would become part of the policy on the next
    // `policy apply -f DIR`: say so.
    let strays: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .filter(|n| {
                    n.ends_with(".toml")
                        && !n.starts_with('.')
                        && !files.iter().any(|(name, _)| name == n)
                })
                .collect()
        })
        .unwrap_or_default();
    let names: Vec<&str> = files.iter().map(|(name, _)| *name).collect();
    println!(
        "Wrote policy version {} to {}: {}.",
        info.version,
        dir.display(),
        names.join(", ")
    );
    if !strays.is_empty() {
        eprintln!(
            "note: {} also holds {}, which {} not part of the policy in force; \
             `hoopctl policy apply -f {}` would include {}.",
            dir.display(),
            render::clean(&strays.join(", ")),
            if strays.len() == 1 { "is" } else { "are" },
            dir.display(),
            if strays.len() == 1 { "it" } else { "them" }
        );
    }
    Ok(0)
}

/// Reads a policy file (at most [`MAX_POLICY_FILE`]).
fn read_policy(path: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_POLICY_FILE + 1).read_to_string(&mut text))
        .with_context(|| format!("cannot read {}", path.display()))?;
    if text.len() as u64 > MAX_POLICY_FILE {
        anyhow::bail!(
            "{} is larger than {} KiB",
            path.display(),
            MAX_POLICY_FILE / 1024
        );
    }
    Ok(text)
}

/// Reads `-f PATH`: one file, or a directory's `*.toml` files in name order.
fn read_document(path: &Path) -> anyhow::Result<PolicySource> {
    if path.is_dir() {
        Ok(hoop_shared::policy::read_dir(path)?)
    } else {
        Ok(PolicySource::Single(read_policy(path)?))
    }
}

/// A document as the API carries it: `(text, files)`.
fn request_parts(source: PolicySource) -> (String, Vec<PolicyFile>) {
    match source {
        PolicySource::Single(text) => (text, Vec::new()),
        PolicySource::Files(files) => (String::new(), files),
    }
}

async fn check(
    creds: &Credentials,
    path: &Path,
    source: &PolicySource,
) -> anyhow::Result<PolicyCheckResponse> {
    let api = creds.api().clone();
    let (text, files) = request_parts(source.clone());
    let body = PolicyCheckRequest {
        text,
        file: Some(path.display().to_string()),
        files,
    };
    let body = &body;
    creds
        .call(|token| {
            let api = api.clone();
            async move { api.check_policy(&token, body).await }
        })
        .await
        .with_context(|| format!("cannot check {}", path.display()))
}

/// Prints a diff on stdout, coloured on a terminal.
fn print_diff(diff: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout();
    if render::colour_allowed(out.is_terminal()) {
        out.write_all(render::colour_diff(diff).as_bytes())?;
    } else {
        out.write_all(diff.as_bytes())?;
    }
    if !diff.ends_with('\n') {
        writeln!(out)?;
    }
    out.flush()
}

/// Prints validation problems on stderr, one per line, and a summary.
fn print_problems(path: &Path, errors: &[String]) {
    for e in errors {
        eprintln!("{}", render::clean(e));
    }
    let n = errors.len();
    eprintln!(
        "{}: {n} problem{} found; nothing was changed.",
        path.display(),
        if n == 1 { "" } else { "s" }
    );
}

async fn diff(ctx: &Context, args: &PolicyFileArgs) -> anyhow::Result<u8> {
    let source = read_document(&args.file)?;
    let creds = ctx.credentials()?;
    let checked = check(&creds, &args.file, &source).await?;
    if checked.diff.is_empty() {
        eprintln!(
            "No changes: {} matches the policy in force (version {}).",
            args.file.display(),
            checked.active_version
        );
    } else {
        print_diff(&checked.diff)?;
    }
    if checked.errors.is_empty() {
        Ok(0)
    } else {
        print_problems(&args.file, &checked.errors);
        Ok(1)
    }
}

async fn apply(ctx: &Context, args: &PolicyApplyArgs) -> anyhow::Result<u8> {
    let path = &args.file;
    let source = read_document(path)?;
    let creds = ctx.credentials()?;
    let checked = check(&creds, path, &source).await?;
    if !checked.errors.is_empty() {
        print_problems(path, &checked.errors);
        return Ok(1);
    }
    if checked.diff.is_empty() {
        eprintln!(
            "No changes: {} matches the policy in force (version {}); nothing to apply.",
            path.display(),
            checked.active_version
        );
        return Ok(0);
    }
    print_diff(&checked.diff)?;
    if !args.yes {
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        if !interactive {
            anyhow::bail!(
                "not applying {} without a confirmation, and there is no terminal to ask on; \
                 review the diff above, then run `hoopctl policy apply -f {} --yes`",
                path.display(),
                path.display()
            );
        }
        let prompt = format!(
            "Apply {} over the policy in force (version {})?",
            path.display(),
            checked.active_version
        );
        let confirmed = tokio::task::spawn_blocking(move || {
            dialoguer::Confirm::new()
                .with_prompt(prompt)
                .default(false)
                .interact_opt()
        })
        .await
        .context("the prompt failed")?
        .context("the prompt failed")?;
        if confirmed != Some(true) {
            eprintln!("Not applied; the policy in force is unchanged.");
            return Ok(1);
        }
    }

    let api = creds.api().clone();
    let (text, files) = request_parts(source);
    let body = ApplyPolicyRequest {
        text,
        file: Some(path.display().to_string()),
        expected_version: Some(checked.active_version),
        files,
    };
    let body = &body;
    let applied = creds
        .call(|token| {
            let api = api.clone();
            async move { api.apply_policy(&token, body).await }
        })
        .await;
    match applied {
        Ok(done) => {
            println!(
                "Applied {}: policy version {} is in force (was {}).",
                path.display(),
                done.version,
                checked.active_version
            );
            Ok(0)
        }
        Err(AuthError::Api(ApiError::Broker {
            code: ErrorCode::InvalidPolicy,
            message,
            ..
        })) => {
            let errors: Vec<String> = message.lines().map(str::to_owned).collect();
            print_problems(path, &errors);
            Ok(1)
        }
        Err(AuthError::Api(ApiError::Broker {
            code: ErrorCode::Conflict,
            message,
            ..
        })) => Err(anyhow::anyhow!(
            "{message}\nhint: someone changed the policy after the diff above was made; \
             nothing was applied. Run `hoopctl policy apply -f {}` again to review the new diff.",
            path.display()
        )),
        Err(e) => {
            Err(anyhow::Error::new(e)).with_context(|| format!("cannot apply {}", path.display()))
        }
    }
}

async fn test(ctx: &Context, args: &PolicyTestArgs) -> anyhow::Result<u8> {
    let (text, files) = match args.file.as_deref().map(read_document).transpose()? {
        Some(source) => {
            let (text, files) = request_parts(source);
            (Some(text), files)
        }
        None => (None, Vec::new()),
    };
    let creds = ctx.credentials()?;
    let api = creds.api().clone();
    let body = PolicyTestRequest {
        user: args.user.clone(),
        groups: args.groups.clone(),
        workload: args.workload,
        connection: args.connection.clone(),
        text,
        sql: args.sql.clone(),
        files,
    };
    let body = &body;
    let decision = creds
        .call(|token| {
            let api = api.clone();
            async move { api.test_policy(&token, body).await }
        })
        .await
        .context("cannot test the policy")?;
    let mut out = std::io::stdout();
    match args.output {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &decision)?;
            writeln!(out)?;
        }
        OutputFormat::Table => out.write_all(describe_decision(&decision).as_bytes())?,
    }
    out.flush()?;
    Ok(0)
}

/// A decision as `policy test` prints it.
pub fn describe_decision(d: &Decision) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            render::clean(&v.join(", "))
        }
    };
    let required = |b: bool| if b { "required" } else { "not required" }.to_owned();
    let mut rows: Vec<(&str, String)> = Vec::new();
    let access = match &d.outcome {
        Outcome::Allow { .. } => "allow",
        Outcome::Deny => "deny",
        Outcome::Approval { .. } => "approval",
    };
    rows.push(("access", access.to_owned()));
    rows.push((
        "rule",
        d.rule
            .as_deref()
            .map(render::clean)
            .unwrap_or_else(|| "none matched (default deny)".into()),
    ));
    rows.push(("why", render::clean(&d.explanation)));
    match &d.outcome {
        Outcome::Allow {
            justification,
            max_duration_secs,
            guardrails,
            masking,
        } => {
            rows.push(("justification", required(*justification)));
            rows.push((
                "session",
                format!("at most {}", render::short_duration(*max_duration_secs)),
            ));
            rows.push(("guardrails", list(guardrails)));
            rows.push(("masking", list(masking)));
        }
        Outcome::Deny => {}
        Outcome::Approval {
            justification,
            approvers,
            approvals,
            default_duration_secs,
            max_duration_secs,
            guardrails,
            masking,
        } => {
            rows.push(("justification", required(*justification)));
            let who = approvers.describe();
            rows.push((
                "approvers",
                format!(
                    "{} ({approvals} approval{} needed; never the requester)",
                    if who.is_empty() {
                        "nobody named".to_owned()
                    } else {
                        render::clean(&who)
                    },
                    if *approvals == 1 { "" } else { "s" }
                ),
            ));
            rows.push((
                "grant",
                format!(
                    "{} by default, at most {}",
                    render::short_duration(*default_duration_secs),
                    render::short_duration(*max_duration_secs)
                ),
            ));
            rows.push(("guardrails", list(guardrails)));
            rows.push(("masking", list(masking)));
        }
    }
    render::fields(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoop_shared::policy::Approvers;

    #[test]
    fn decisions_name_the_rule_and_what_it_asks_for() {
        let approval = Decision {
            outcome: Outcome::Approval {
                justification: true,
                approvers: Approvers {
                    groups: vec!["sre".into()],
                    users: vec![],
                },
                approvals: 1,
                default_duration_secs: 900,
                max_duration_secs: 3600,
                guardrails: vec!["no-destructive".into()],
                masking: vec![],
            },
            rule: Some("engineering-prod-jit".into()),
            explanation:
                "rule \"engineering-prod-jit\" requires 1 approval from group sre alice on pg-prod"
                    .into(),
        };
        assert_eq!(
            describe_decision(&approval),
            "access         approval\n\
             rule           engineering-prod-jit\n\
             why            rule \"engineering-prod-jit\" requires 1 approval from group sre alice on pg-prod\n\
             justification  required\n\
             approvers      group sre (1 approval needed; never the requester)\n\
             grant          15m by default, at most 1h\n\
             guardrails     no-destructive\n\
             masking        -\n"
        );
        let deny = Decision {
            outcome: Outcome::Deny,
            rule: None,
            explanation: "no rule gives mallory access to pg-prod (default deny)".into(),
        };
        assert_eq!(
            describe_decision(&deny),
            "access  deny\nrule    none matched (default deny)\n\
             why     no rule gives mallory access to pg-prod (default deny)\n"
        );
        let allow = Decision {
            outcome: Outcome::Allow {
                justification: false,
                max_duration_secs: 8 * 3600,
                guardrails: vec![],
                masking: vec!["pii".into()],
            },
            rule: Some("sre-all".into()),
            explanation: "rule \"sre-all\" allows bob on pg-prod".into(),
        };
        let text = describe_decision(&allow);
        assert!(text.starts_with("access         allow\n"), "{text}");
        assert!(text.contains("session        at most 8h\n"), "{text}");
        assert!(text.contains("masking        pii\n"), "{text}");
    }

    #[test]
    fn oversized_or_missing_files_are_refused_before_any_call() {
        let tmp = tempfile::tempdir().unwrap();
        let big = tmp.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; (MAX_POLICY_FILE + 1) as usize]).unwrap();
        let e = read_policy(&big).unwrap_err().to_string();
        assert!(e.contains("larger than 1024 KiB"), "{e}");
        let e = format!(
            "{:#}",
            read_policy(&tmp.path().join("nope.toml")).unwrap_err()
        );
        assert!(e.contains("cannot read") && e.contains("nope.toml"), "{e}");
    }

    fn info(files: &[(&str, &str)]) -> PolicyInfo {
        PolicyInfo {
            version: 7,
            text: String::new(),
            applied_by: "carol".into(),
            applied_at: 0,
            policy: hoop_shared::policy::Policy {
                groups: vec![],
                admins: vec![],
                rules: vec![],
            },
            files: files
                .iter()
                .map(|(n, t)| PolicyFile {
                    name: (*n).into(),
                    text: (*t).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn out_dir_writes_the_files_and_overwrites_only_with_force() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("policy.d");
        let two = info(&[("10-base.toml", "a = 1\n"), ("20-team.toml", "b = 2\n")]);
        write_out(&dir, &two, false).unwrap();
        assert_eq!(
            read_document(&dir).unwrap().named_files(),
            [("10-base.toml", "a = 1\n"), ("20-team.toml", "b = 2\n")]
        );
        // One file that exists refuses the whole write: nothing changes.
        std::fs::remove_file(dir.join("10-base.toml")).unwrap();
        let changed = info(&[("10-base.toml", "a = 9\n"), ("20-team.toml", "b = 9\n")]);
        let e = format!("{:#}", write_out(&dir, &changed, false).unwrap_err());
        assert!(e.contains("20-team.toml") && e.contains("--force"), "{e}");
        assert!(!dir.join("10-base.toml").exists());
        assert_eq!(
            std::fs::read_to_string(dir.join("20-team.toml")).unwrap(),
            "b = 2\n"
        );
        write_out(&dir, &changed, true).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("20-team.toml")).unwrap(),
            "b = 9\n"
        );
        // A one-file policy becomes policy.toml.
        let mut single = info(&[]);
        single.text = "groups = []\n".into();
        let one = tmp.path().join("one");
        write_out(&one, &single, false).unwrap();
        assert_eq!(
            std::fs::read_to_string(one.join("policy.toml")).unwrap(),
            "groups = []\n"
        );
        // A name that would leave the directory is refused, whoever sent it.
        let evil = info(&[("../evil.toml", "")]);
        let e = format!("{:#}", write_out(&dir, &evil, true).unwrap_err());
        assert!(e.contains("not a policy file name"), "{e}");
        assert!(!tmp.path().join("evil.toml").exists());
    }
}
