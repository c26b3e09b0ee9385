//! Rules shared by every document hoop reads: what a name may look like, and
//! how a byte offset becomes the `LINE:COLUMN` that error messages show.

/// What [`is_name`] accepts, for messages.
pub const NAME_RULE: &str =
    "must be 1-63 characters of a-z, 0-9, '-' and '_', starting with a letter";

/// True for names of connections, rules, users in configs: lower-case ASCII
/// letters, digits, `-` and `_`, starting with a letter, at most 63 long.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && s.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Line and column (both 1-based) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_positions() {
        assert!(is_name("pg-prod_2"));
        assert!(!is_name("Pg") && !is_name("2pg") && !is_name("") && !is_name(&"a".repeat(64)));
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }
}
