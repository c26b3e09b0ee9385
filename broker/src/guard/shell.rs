//! Command guardrails for SSH `exec` requests: a command line is split the
//! way a POSIX shell would, each simple command is judged against rules
//! (block, review, allow), and whatever cannot be classified is treated as
//! the connection's `on_unparsable` says (block by default).
//!
//! How a command line is read (docs/ssh.md has the user's version):
//!
//! - A quote-aware scan finds the list operators `;`, `&&`, `||`, `|`, `&`
//!   and newlines outside quotes, and cuts the line into simple commands;
//!   each is judged on its own, and the line gets the strictest decision
//!   (block > review > allow), so `true && rm -rf /` is blocked.
//! - Redirections (`>`, `>>`, `<`, `2>`, `&>`) are taken out of a command
//!   and their targets judged too (`> /dev/sda` is destructive).
//! - Words are then split with the `shell-words` crate (quotes, escapes).
//! - Wrappers are looked through: `sudo`, `env`, `nohup`, `nice`, `time`,
//!   `timeout`, `exec`, `command`, `xargs`, and `sh|bash|dash|zsh -c 'LINE'`
//!   (whose LINE is judged as a command line of its own).
//! - What a plain reading cannot know is *unclassifiable*: command
//!   substitution (`$(...)`, backticks), process substitution, sub-shells
//!   and groups (`(...)`, `{ ...; }`), a command name that is a variable,
//!   `eval`, here-documents, unbalanced quotes, and nesting deeper than
//!   [`MAX_DEPTH`]. Such a line is blocked unless `on_unparsable = "allow"`.
//!
//! An interactive shell cannot be judged command by command; `allow_shell`
//! decides whether a connection offers one at all.

use serde::Deserialize;

use super::Action;
use crate::config::{ConnectionConfig, UnparsableAction};

/// Name of the built-in command rule set.
pub const NO_DESTRUCTIVE_SHELL: &str = "no-destructive-shell";

/// Deepest `sh -c` nesting looked into.
pub const MAX_DEPTH: usize = 4;

/// Longest command line judged (longer ones are unclassifiable).
pub const MAX_COMMAND_LEN: usize = 64 * 1024;

/// One `command_rules` entry in the broker config.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CommandRuleConfig {
    /// Label used in messages and the audit trail (default: the pattern).
    #[serde(default)]
    pub name: Option<String>,
    /// `block`, `review` or `allow`.
    pub action: Action,
    /// Word patterns, e.g. `"systemctl restart *"`: each pattern word is a
    /// glob (`*`, `?`) for one command word; a final `**` matches any
    /// remaining words (`"git **"`).
    pub pattern: String,
}

/// Why a rule set could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShellGuardError {
    /// A set name that does not exist.
    #[error("unknown command rule set {0:?}; the built-in set is \"no-destructive-shell\"")]
    UnknownSet(String),
    /// A pattern that cannot be split into words.
    #[error("command rule pattern {0:?} is not a valid word list: {1}")]
    BadPattern(String, String),
}

/// What the guard decided about one command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Allow, review or block.
    pub action: Action,
    /// `set/rule` that decided, when a rule did.
    pub rule: Option<String>,
    /// For people: why.
    pub reason: String,
}

impl Verdict {
    fn allow() -> Verdict {
        Verdict {
            action: Action::Allow,
            rule: None,
            reason: "no rule objected".into(),
        }
    }
}

#[derive(Debug, Clone)]
enum Matcher {
    /// A built-in check over the words of a simple command.
    Builtin(fn(&[String]) -> bool),
    /// Word globs; `any_tail` for a final `**`.
    Words { words: Vec<String>, any_tail: bool },
    /// A redirection target (built-in).
    Target(fn(&str) -> bool),
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    action: Action,
    matcher: Matcher,
}

/// One connection's compiled command rules.
#[derive(Debug, Clone)]
pub struct CommandGuard {
    rules: Vec<Rule>,
    on_unparsable: UnparsableAction,
}

impl CommandGuard {
    /// The guard an `ssh` connection's config describes: its own
    /// `command_rules` first, then the named sets (default
    /// [`NO_DESTRUCTIVE_SHELL`]).
    pub fn from_config(c: &ConnectionConfig) -> Result<CommandGuard, ShellGuardError> {
        let default_sets = vec![NO_DESTRUCTIVE_SHELL.to_owned()];
        let sets = c.commands.as_ref().unwrap_or(&default_sets);
        CommandGuard::new(&c.command_rules, sets, c.on_unparsable)
    }

    /// Builds a guard from own rules and set names.
    pub fn new(
        own: &[CommandRuleConfig],
        sets: &[String],
        on_unparsable: UnparsableAction,
    ) -> Result<CommandGuard, ShellGuardError> {
        let mut rules = Vec::new();
        for r in own {
            let mut words = shell_words::split(&r.pattern)
                .map_err(|e| ShellGuardError::BadPattern(r.pattern.clone(), e.to_string()))?;
            if words.is_empty() {
                return Err(ShellGuardError::BadPattern(
                    r.pattern.clone(),
                    "it is empty".into(),
                ));
            }
            let any_tail = words.last().is_some_and(|w| w == "**");
            if any_tail {
                words.pop();
            }
            rules.push(Rule {
                name: format!(
                    "command_rules/{}",
                    r.name.clone().unwrap_or(r.pattern.clone())
                ),
                action: r.action,
                matcher: Matcher::Words { words, any_tail },
            });
        }
        for set in sets {
            match set.as_str() {
                NO_DESTRUCTIVE_SHELL => rules.extend(no_destructive_shell()),
                other => return Err(ShellGuardError::UnknownSet(other.to_owned())),
            }
        }
        Ok(CommandGuard {
            rules,
            on_unparsable,
        })
    }

    /// Judges one exec command line.
    pub fn judge(&self, line: &str) -> Verdict {
        match self.judge_line(line, 0) {
            Ok(v) => v,
            Err(why) => match self.on_unparsable {
                UnparsableAction::Block => Verdict {
                    action: Action::Block,
                    rule: Some("on_unparsable".into()),
                    reason: format!(
                        "the command cannot be checked ({why}); run simple commands, or ask \
                         an admin to set on_unparsable = \"allow\""
                    ),
                },
                UnparsableAction::Allow => Verdict {
                    action: Action::Allow,
                    rule: Some("on_unparsable".into()),
                    reason: format!("not checked: {why}"),
                },
            },
        }
    }

    fn judge_line(&self, line: &str, depth: usize) -> Result<Verdict, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} shells"));
        }
        if line.len() > MAX_COMMAND_LEN {
            return Err(format!("longer than {MAX_COMMAND_LEN} bytes"));
        }
        let mut worst = Verdict::allow();
        for simple in split_line(line)? {
            let v = self.judge_simple(&simple, depth)?;
            if v.action > worst.action {
                worst = v;
            }
        }
        Ok(worst)
    }

    fn judge_simple(&self, simple: &Simple, depth: usize) -> Result<Verdict, String> {
        let mut worst = Verdict::allow();
        for target in &simple.redirect_targets {
            if let Some(v) = self.first_match(|m| match m {
                Matcher::Target(f) => f(target),
                _ => false,
            }) && v.action > worst.action
            {
                worst = v;
            }
        }
        let words = shell_words::split(&simple.text).map_err(|e| e.to_string())?;
        let words = unwrap_wrappers(words)?;
        let Some(program) = words.first() else {
            return Ok(worst);
        };
        if program.contains('$') {
            return Err("the command name is a variable".into());
        }
        if program == "eval" || program == "source" || program == "." {
            return Err(format!("`{program}` runs text the guard cannot see"));
        }
        // `sh -c LINE`: judge LINE as a command line of its own.
        if is_shell(program) {
            if let Some(pos) = words.iter().position(|w| w == "-c") {
                let inner = words.get(pos + 1).ok_or("`-c` without a command")?;
                let v = self.judge_line(inner, depth + 1)?;
                if v.action > worst.action {
                    worst = v;
                }
                return Ok(worst);
            }
            if words.len() == 1 {
                return Err("a bare shell reads commands the guard cannot see".into());
            }
        }
        if let Some(v) = self.first_match(|m| match m {
            Matcher::Builtin(f) => f(&words),
            Matcher::Words {
                words: pat,
                any_tail,
            } => words_match(pat, *any_tail, &words),
            Matcher::Target(_) => false,
        }) && v.action > worst.action
        {
            worst = v;
        }
        Ok(worst)
    }

    fn first_match(&self, hit: impl Fn(&Matcher) -> bool) -> Option<Verdict> {
        self.rules
            .iter()
            .find(|r| hit(&r.matcher))
            .map(|r| Verdict {
                action: r.action,
                rule: Some(r.name.clone()),
                reason: match r.action {
                    Action::Block => format!("blocked by rule {}", r.name),
                    Action::Review => format!("rule {} requires a review", r.name),
                    Action::Allow => format!("allowed by rule {}", r.name),
                },
            })
    }
}

/// One simple command: its text without redirections, and where it redirects.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Simple {
    text: String,
    redirect_targets: Vec<String>,
}

/// Cuts a command line into simple commands at unquoted list operators,
/// taking redirections out; refuses what it cannot classify.
fn split_line(line: &str) -> Result<Vec<Simple>, String> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut targets = Vec::new();
    let mut i = 0;
    let at = |k: usize| chars.get(k).copied();
    let mut at_word_start = true;
    while let Some(c) = at(i) {
        match c {
            '\'' => {
                let end = (i + 1..chars.len())
                    .find(|&k| at(k) == Some('\''))
                    .ok_or("unbalanced single quote")?;
                cur.extend(chars.get(i..=end).into_iter().flatten());
                i = end + 1;
                at_word_start = false;
                continue;
            }
            '"' => {
                let mut k = i + 1;
                loop {
                    match at(k) {
                        None => return Err("unbalanced double quote".into()),
                        Some('\\') => k += 2,
                        Some('"') => break,
                        Some('`') => return Err("command substitution (backticks)".into()),
                        Some('$') if at(k + 1) == Some('(') => {
                            return Err("command substitution `$(...)`".into());
                        }
                        Some(_) => k += 1,
                    }
                }
                cur.extend(chars.get(i..=k).into_iter().flatten());
                i = k + 1;
                at_word_start = false;
                continue;
            }
            '\\' => {
                cur.push(c);
                if let Some(n) = at(i + 1) {
                    cur.push(n);
                }
                i += 2;
                at_word_start = false;
                continue;
            }
            '`' => return Err("command substitution (backticks)".into()),
            '$' if at(i + 1) == Some('(') => return Err("command substitution `$(...)`".into()),
            '(' | ')' => return Err("a sub-shell or process substitution".into()),
            '{' | '}' if at_word_start && matches!(at(i + 1), None | Some(' ' | '\t' | '\n')) => {
                return Err("a command group `{ ...; }`".into());
            }
            ';' | '\n' => {
                push_simple(&mut out, &mut cur, &mut targets);
                i += 1;
                at_word_start = true;
                continue;
            }
            '&' if at(i + 1) == Some('>') => {
                i += if at(i + 2) == Some('>') { 3 } else { 2 };
                let (t, next) = read_target(&chars, i)?;
                targets.push(t);
                i = next;
                continue;
            }
            '&' | '|' => {
                push_simple(&mut out, &mut cur, &mut targets);
                i += if at(i + 1) == Some(c) { 2 } else { 1 };
                at_word_start = true;
                continue;
            }
            '<' | '>' => {
                if c == '<' && at(i + 1) == Some('<') {
                    return Err("a here-document".into());
                }
                // A file-descriptor number just before belongs to the redirection.
                if cur.ends_with(|d: char| d.is_ascii_digit()) {
                    let trimmed = cur.trim_end_matches(|d: char| d.is_ascii_digit());
                    if trimmed.is_empty() || trimmed.ends_with(char::is_whitespace) {
                        cur.truncate(trimmed.len());
                    }
                }
                i += 1;
                if at(i) == Some('>') || at(i) == Some('|') {
                    i += 1;
                }
                if at(i) == Some('&') {
                    // `2>&1`: a descriptor, not a file.
                    i += 1;
                    while at(i).is_some_and(|d| d.is_ascii_digit() || d == '-') {
                        i += 1;
                    }
                    continue;
                }
                let (t, next) = read_target(&chars, i)?;
                targets.push(t);
                i = next;
                continue;
            }
            _ => {
                at_word_start = c.is_whitespace();
                cur.push(c);
                i += 1;
            }
        }
    }
    push_simple(&mut out, &mut cur, &mut targets);
    Ok(out)
}

fn push_simple(out: &mut Vec<Simple>, cur: &mut String, targets: &mut Vec<String>) {
    let text = std::mem::take(cur);
    let redirect_targets = std::mem::take(targets);
    if !text.trim().is_empty() || !redirect_targets.is_empty() {
        out.push(Simple {
            text,
            redirect_targets,
        });
    }
}

/// Reads the word after a redirection operator; returns it and the index after it.
fn read_target(chars: &[char], mut i: usize) -> Result<(String, usize), String> {
    while chars
        .get(i)
        .is_some_and(|c| c.is_whitespace() && *c != '\n')
    {
        i += 1;
    }
    let start = i;
    while chars
        .get(i)
        .is_some_and(|c| !c.is_whitespace() && !";&|<>()".contains(*c))
    {
        i += 1;
    }
    let raw: String = chars.get(start..i).into_iter().flatten().collect();
    if raw.contains('$') || raw.contains('`') {
        return Err("a redirection to a computed name".into());
    }
    let word = shell_words::split(&raw)
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or("a redirection without a target")?;
    Ok((word, i))
}

fn is_shell(program: &str) -> bool {
    let base = program.rsplit('/').next().unwrap_or(program);
    matches!(
        base,
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "ash" | "busybox"
    )
}

/// Drops `sudo`, `env VAR=x`, `nohup`, `time`... and leading assignments, so
/// the rules see the program that really runs.
fn unwrap_wrappers(mut words: Vec<String>) -> Result<Vec<String>, String> {
    loop {
        let Some(first) = words.first() else {
            return Ok(words);
        };
        let base = first.rsplit('/').next().unwrap_or(first).to_owned();
        let is_assignment = first.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_')
        });
        let skip = if is_assignment {
            1
        } else {
            // (wrapper, its short options that take a value, positional
            // arguments before the command)
            let (with_value, positional) = match base.as_str() {
                "sudo" => ("ugCDhprtUTR", 0),
                "doas" => ("uC", 0),
                "env" => ("uC", 0),
                "nice" => ("n", 0),
                "ionice" => ("cnp", 0),
                "timeout" => ("ks", 1),
                "stdbuf" => ("ioe", 0),
                "xargs" => ("aEdIiLlnPs", 0),
                "chroot" => ("", 1),
                "nohup" | "time" | "exec" | "command" | "builtin" => ("", 0),
                _ => return Ok(words),
            };
            if base == "env"
                && words
                    .iter()
                    .any(|w| w.starts_with("-S") || w.starts_with("--split-string"))
            {
                return Err("`env -S` splits a string the guard cannot see".into());
            }
            let mut k = 1;
            while let Some(w) = words.get(k) {
                if w == "--" {
                    k += 1;
                    break;
                }
                if !w.starts_with('-') || w == "-" {
                    break;
                }
                // `-u root` takes the next word; `-uroot`, `--user=root` do not.
                let letters: Vec<char> = w.chars().skip(1).collect();
                let last_takes = !w.starts_with("--")
                    && letters.last().is_some_and(|c| with_value.contains(*c))
                    && letters.iter().position(|c| with_value.contains(*c))
                        == Some(letters.len() - 1);
                k += if last_takes { 2 } else { 1 };
            }
            // `env VAR=x cmd`: assignments are dropped by the next round.
            k + positional
        };
        words.drain(..skip.min(words.len()));
    }
}

fn words_match(pattern: &[String], any_tail: bool, words: &[String]) -> bool {
    if words.len() < pattern.len() || (!any_tail && words.len() != pattern.len()) {
        return false;
    }
    let mut first = true;
    pattern.iter().zip(words).all(|(p, w)| {
        // The program is compared by its base name (`/bin/rm` is `rm`).
        let w = if std::mem::take(&mut first) {
            w.rsplit('/').next().unwrap_or(w)
        } else {
            w.as_str()
        };
        glob(p, w)
    })
}

/// `*` and `?` globbing over characters.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None, 0usize);
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

fn program(words: &[String]) -> &str {
    words
        .first()
        .map(|w| w.rsplit('/').next().unwrap_or(w))
        .unwrap_or("")
}

/// Paths whose recursive removal (or overwrite) wrecks a machine.
fn is_vital_path(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    let p = p.strip_suffix("/*").unwrap_or(p);
    matches!(
        p,
        "" | "*"
            | "~"
            | "/*"
            | "/bin"
            | "/boot"
            | "/dev"
            | "/etc"
            | "/home"
            | "/lib"
            | "/lib64"
            | "/opt"
            | "/proc"
            | "/root"
            | "/sbin"
            | "/srv"
            | "/sys"
            | "/usr"
            | "/var"
            | "$HOME"
            | "."
            | ".."
    ) || path == "/"
}

fn rm_recursive_vital(words: &[String]) -> bool {
    if program(words) != "rm" {
        return false;
    }
    let mut recursive = false;
    let mut paths = Vec::new();
    let mut options_done = false;
    for w in words.iter().skip(1) {
        if !options_done && w == "--" {
            options_done = true;
        } else if !options_done && w.starts_with("--") {
            recursive |= w == "--recursive" || w == "--no-preserve-root";
        } else if !options_done && w.starts_with('-') && w.len() > 1 {
            recursive |= w.contains('r') || w.contains('R');
        } else {
            paths.push(w.as_str());
        }
    }
    recursive && paths.iter().any(|p| is_vital_path(p))
}

fn mkfs_or_wipe(words: &[String]) -> bool {
    let p = program(words);
    p.starts_with("mkfs")
        || matches!(
            p,
            "mke2fs" | "mkswap" | "wipefs" | "shred" | "fdisk" | "sfdisk" | "parted" | "blkdiscard"
        )
}

fn dd_to_device(words: &[String]) -> bool {
    program(words) == "dd"
        && words
            .iter()
            .any(|w| w.strip_prefix("of=").is_some_and(is_device))
}

fn power_off(words: &[String]) -> bool {
    let p = program(words);
    matches!(p, "shutdown" | "reboot" | "halt" | "poweroff")
        || (matches!(p, "init" | "telinit") && words.get(1).is_some_and(|a| a == "0" || a == "6"))
        || (p == "systemctl"
            && words
                .iter()
                .skip(1)
                .any(|a| matches!(a.as_str(), "poweroff" | "reboot" | "halt" | "kexec")))
}

fn recursive_perm_on_root(words: &[String]) -> bool {
    matches!(program(words), "chmod" | "chown" | "chgrp")
        && words.iter().skip(1).any(|w| {
            w == "-R"
                || w == "--recursive"
                || (w.starts_with('-') && !w.starts_with("--") && w.contains('R'))
        })
        && words.iter().skip(1).any(|w| is_vital_path(w))
}

/// Block devices and memory; `/dev/null` and friends are harmless.
fn is_device(path: &str) -> bool {
    path.starts_with("/dev/")
        && !matches!(
            path,
            "/dev/null" | "/dev/zero" | "/dev/stdout" | "/dev/stderr" | "/dev/tty" | "/dev/stdin"
        )
        && !path.starts_with("/dev/fd/")
        && !path.starts_with("/dev/pts/")
}

fn no_destructive_shell() -> Vec<Rule> {
    let rule = |name: &str, matcher| Rule {
        name: format!("{NO_DESTRUCTIVE_SHELL}/{name}"),
        action: Action::Block,
        matcher,
    };
    vec![
        rule(
            "rm-recursive-system-path",
            Matcher::Builtin(rm_recursive_vital),
        ),
        rule("format-disk", Matcher::Builtin(mkfs_or_wipe)),
        rule("dd-to-device", Matcher::Builtin(dd_to_device)),
        rule("power-off", Matcher::Builtin(power_off)),
        rule(
            "recursive-permissions-on-system-path",
            Matcher::Builtin(recursive_perm_on_root),
        ),
        rule("write-to-device", Matcher::Target(is_device)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> CommandGuard {
        CommandGuard::new(
            &[
                CommandRuleConfig {
                    name: Some("restart".into()),
                    action: Action::Review,
                    pattern: "systemctl restart *".into(),
                },
                CommandRuleConfig {
                    name: None,
                    action: Action::Block,
                    pattern: "git push --force **".into(),
                },
            ],
            &[NO_DESTRUCTIVE_SHELL.into()],
            UnparsableAction::Block,
        )
        .unwrap()
    }

    #[track_caller]
    fn action(line: &str) -> Action {
        guard().judge(line).action
    }

    #[test]
    fn destructive_commands_are_blocked_wherever_they_hide() {
        for line in [
            "rm -rf /",
            "rm -rf /*",
            "rm -fr --no-preserve-root /",
            "/bin/rm -r -f /etc",
            "sudo rm -rf /",
            "sudo -u root rm -Rf /usr/",
            "echo ok; rm -rf /",
            "true && rm -rf ~",
            "false || rm -rf /var",
            "ls | xargs rm -rf /",
            "sh -c 'rm -rf /'",
            "bash -c \"sudo rm -rf /\"",
            "mkfs.ext4 /dev/sda1",
            "dd if=/dev/zero of=/dev/sda bs=1M",
            "shutdown -h now",
            "reboot",
            "systemctl poweroff",
            "init 0",
            "chmod -R 777 /",
            "cat /dev/zero > /dev/sda",
            "env X=1 nohup rm -rf /",
        ] {
            assert_eq!(action(line), Action::Block, "{line}");
        }
    }

    #[test]
    fn ordinary_commands_pass() {
        for line in [
            "uptime",
            "echo hello; exit 7",
            "ls -la /tmp && df -h",
            "rm -rf /tmp/build",
            "rm -f /etc/motd.d/old",
            "scp -t /tmp/",
            "grep -r 'a;b' /etc > /dev/null 2>&1",
            "echo \"rm -rf /\"",
            "dd if=/dev/sda of=/tmp/disk.img",
            "echo hi >> /tmp/log",
        ] {
            assert_eq!(action(line), Action::Allow, "{line}");
        }
    }

    #[test]
    fn what_cannot_be_classified_is_blocked_by_default_and_allowed_on_request() {
        for line in [
            "echo $(rm -rf /)",
            "echo `id`",
            "echo \"$(id)\"",
            "(cd / && ls)",
            "{ ls; }",
            "$CMD -rf /",
            "eval \"$X\"",
            "cat <<EOF",
            "echo 'unbalanced",
            "bash",
            "diff <(ls a) <(ls b)",
            "env -S 'rm -rf /'",
        ] {
            let v = guard().judge(line);
            assert_eq!(v.action, Action::Block, "{line}");
            assert_eq!(v.rule.as_deref(), Some("on_unparsable"), "{line}");
            assert!(
                v.reason.contains("cannot be checked"),
                "{line}: {}",
                v.reason
            );
        }
        let lenient =
            CommandGuard::new(&[], &[NO_DESTRUCTIVE_SHELL.into()], UnparsableAction::Allow)
                .unwrap();
        assert_eq!(lenient.judge("echo $(id)").action, Action::Allow);
    }

    #[test]
    fn own_rules_come_first_and_review_is_reported() {
        let v = guard().judge("sudo systemctl restart nginx");
        assert_eq!(v.action, Action::Review);
        assert_eq!(v.rule.as_deref(), Some("command_rules/restart"));
        assert_eq!(action("systemctl status nginx"), Action::Allow);
        assert_eq!(action("git push --force origin main"), Action::Block);
        assert_eq!(action("git push origin main"), Action::Allow);
        // The strictest part of a line wins.
        assert_eq!(action("systemctl restart a; reboot"), Action::Block);
    }

    #[test]
    fn unknown_sets_and_bad_patterns_are_config_errors() {
        let err = CommandGuard::new(&[], &["nope".into()], UnparsableAction::Block).unwrap_err();
        assert!(err.to_string().contains("no-destructive-shell"));
        let bad = CommandRuleConfig {
            name: None,
            action: Action::Block,
            pattern: "'open".into(),
        };
        assert!(CommandGuard::new(&[bad], &[], UnparsableAction::Block).is_err());
    }

    #[test]
    fn globbing() {
        assert!(glob("re*", "restart"));
        assert!(glob("*", ""));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(!glob("stop", "restart"));
    }
}
