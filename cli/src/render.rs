//! Text output shared by the commands: aligned tables, short durations, and
//! making text that other people wrote (a requester's reason, an approver's
//! comment) safe to print on a terminal.

use std::time::Duration;

/// `text` with every control character (newlines, tabs, ESC...) replaced by
/// a space, so a reason or comment typed by someone else can neither break a
/// table's layout nor send escape sequences to the reader's terminal.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Like [`clean`], cut to `max` characters with a trailing `…`.
pub fn clean_short(text: &str, max: usize) -> String {
    let text = clean(text);
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Seconds as people say them: `45s`, `15m`, `1h 30m`, `2d 4h` (the two
/// largest units; precise enough for grants and ages).
pub fn short_duration(secs: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    if secs == 0 {
        return "0s".into();
    }
    let mut parts = Vec::new();
    let mut rest = secs;
    for (size, unit) in UNITS {
        if rest >= size {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        } else if !parts.is_empty() {
            // Keep the two units adjacent: "1h 0m 5s" becomes "1h".
            break;
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.join(" ")
}

/// A [`Duration`] as [`short_duration`] says it.
pub fn duration(d: Duration) -> String {
    short_duration(d.as_secs())
}

/// Columns separated by two spaces, each as wide as its widest cell; the
/// last column is not padded, and no line ends in spaces.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = w.saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `label  value` lines with the values aligned.
pub fn fields(rows: &[(&str, String)]) -> String {
    let width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (label, value) in rows {
        let line = format!("{label:<width$}  {value}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A spinner with a message on stderr (hidden when stderr is not a terminal).
pub fn spinner() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner()
        .with_style(indicatif::ProgressStyle::default_spinner());
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar
}

/// True when colours may be used on a stream that is a terminal: the
/// `NO_COLOR` convention (<https://no-color.org>) turns them off.
pub fn colour_allowed(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A unified diff with added lines green, removed lines red and hunk
/// headers cyan (ANSI), for a terminal.
pub fn colour_diff(diff: &str) -> String {
    let mut out = String::with_capacity(diff.len() + 64);
    for line in diff.split_inclusive('\n') {
        let colour = if line.starts_with("+++") || line.starts_with("---") {
            Some("1")
        } else if line.starts_with('+') {
            Some("32")
        } else if line.starts_with('-') {
            Some("31")
        } else if line.starts_with("@@") {
            Some("36")
        } else {
            None
        };
        match colour {
            Some(c) => {
                let (body, nl) = match line.strip_suffix('\n') {
                    Some(body) => (body, "\n"),
                    None => (line, ""),
                };
                out.push_str(&format!("\x1b[{c}m{body}\x1b[0m{nl}"));
            }
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(
            clean("INC-42\n\x1b[31mred\x1b[0m\ttab"),
            "INC-42  [31mred [0m tab"
        );
        assert_eq!(clean_short("abcdef", 4), "abc…");
        assert_eq!(clean_short("abc", 4), "abc");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(short_duration(0), "0s");
        assert_eq!(short_duration(45), "45s");
        assert_eq!(short_duration(900), "15m");
        assert_eq!(short_duration(5400), "1h 30m");
        assert_eq!(short_duration(3605), "1h");
        assert_eq!(short_duration(86_400 * 2 + 3600 * 4 + 60), "2d 4h");
        assert_eq!(short_duration(61), "1m 1s");
    }

    #[test]
    fn tables_align_and_do_not_trail_spaces() {
        let t = table(
            &["ID", "STATE", "REASON"],
            &[
                vec!["a1".into(), "pending".into(), "INC-42".into()],
                vec!["b22222".into(), "ok".into(), String::new()],
            ],
        );
        assert_eq!(
            t,
            "ID      STATE    REASON\na1      pending  INC-42\nb22222  ok\n"
        );
        assert_eq!(
            fields(&[("State", "pending".into()), ("Connection", "pg".into())]),
            "State       pending\nConnection  pg\n"
        );
    }

    #[test]
    fn diffs_are_coloured_by_line_kind() {
        let d = "--- a\n+++ b\n@@ -1 +1 @@\n-old\n+new\n same\n";
        let c = colour_diff(d);
        assert!(c.contains("\x1b[31m-old\x1b[0m\n"), "{c:?}");
        assert!(c.contains("\x1b[32m+new\x1b[0m\n"), "{c:?}");
        assert!(c.contains("\x1b[36m@@ -1 +1 @@\x1b[0m\n"), "{c:?}");
        assert!(c.contains("\x1b[1m+++ b\x1b[0m\n"), "{c:?}");
        assert!(c.ends_with(" same\n"));
    }
}
