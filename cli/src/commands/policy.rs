//! `hoopctl policy get|diff|apply|test`: the access policy as code.
//!
//! `apply` is check-then-swap: `POST /v1/policy/check` validates the file
//! and diffs it against the policy in force (version N); the person (or
//! `--yes`) confirms that diff; `PUT /v1/policy` with `expected_version = N`
//! applies it only if nobody changed the policy in between, so what was
//! reviewed is exactly what lands. An invalid document changes nothing.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::Path;

use anyhow::Context as _;
use hoop_shared::api::{
    ApplyPolicyRequest, ErrorCode, PolicyCheckRequest, PolicyCheckResponse, PolicyTestRequest,
};
use hoop_shared::policy::{Decision, Outcome};

use super::{Context, describe_time};
use crate::api::ApiError;
use crate::auth::{AuthError, Credentials, now_unix};
use crate::cli::{
    OutputFormat, PolicyApplyArgs, PolicyArgs, PolicyCommand, PolicyFileArgs, PolicyFormat,
    PolicyGetArgs, PolicyTestArgs,
};
use crate::render;

/// Largest policy file read (the broker's limit is the same).
const MAX_POLICY_FILE: u64 = 1024 * 1024;

/// Runs `hoopctl policy`.
pub async fn run(ctx: &Context, args: &PolicyArgs) -> anyhow::Result<u8> {
    match &args.command {
        PolicyCommand::Get(a) => get(ctx, a).await,
        PolicyCommand::Diff(a) => diff(ctx, a).await,
        PolicyCommand::Apply(a) => apply(ctx, a).await,
        PolicyCommand::Test(a) => test(ctx, a).await,
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
    let mut out = std::io::stdout();
    match args.output {
        PolicyFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &info)?;
            writeln!(out)?;
        }
        PolicyFormat::Toml => {
            // stdout is the document alone, so `policy get > policy.toml`
            // round-trips; where it came from goes to stderr.
            eprintln!(
                "# policy version {}, applied by {} {}",
                info.version,
                render::clean(&info.applied_by),
                describe_time(info.applied_at, now_unix())
            );
            out.write_all(info.text.as_bytes())?;
            if !info.text.ends_with('\n') {
                writeln!(out)?;
            }
        }
    }
    out.flush()?;
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

async fn check(
    creds: &Credentials,
    path: &Path,
    text: &str,
) -> anyhow::Result<PolicyCheckResponse> {
    let api = creds.api().clone();
    let body = PolicyCheckRequest {
        text: text.to_owned(),
        file: Some(path.display().to_string()),
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
    let text = read_policy(&args.file)?;
    let creds = ctx.credentials()?;
    let checked = check(&creds, &args.file, &text).await?;
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
    let text = read_policy(path)?;
    let creds = ctx.credentials()?;
    let checked = check(&creds, path, &text).await?;
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
    let body = ApplyPolicyRequest {
        text,
        file: Some(path.display().to_string()),
        expected_version: Some(checked.active_version),
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
    let text = args.file.as_deref().map(read_policy).transpose()?;
    let creds = ctx.credentials()?;
    let api = creds.api().clone();
    let body = PolicyTestRequest {
        user: args.user.clone(),
        groups: args.groups.clone(),
        workload: args.workload,
        connection: args.connection.clone(),
        text,
        sql: args.sql.clone(),
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
}
