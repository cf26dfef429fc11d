//! Words quoted for a POSIX shell, for the commands we print for the user to paste: exact when
//! pasted (byte for byte, whatever a stream id or name holds), and carrying no control
//! character but the line break to the terminal they are printed on.
//!
//! Plain words stay bare; others are single-quoted. A control character other than `\n` (an
//! escape, a tab, a carriage return) cannot be shown raw, so it is written as
//! `"$(printf '\ooo')"` beside the quoted parts; a line break stays inside the quotes (it is
//! safe on a terminal, and `$(…)` would strip it).

use std::fmt::Write as _;

/// `word` as one POSIX shell word.
pub fn quote(word: &str) -> String {
    if !word.chars().any(needs_printf) {
        return shlex::try_quote(word)
            .map(|q| q.into_owned())
            .unwrap_or_else(|_| single_quoted(word));
    }
    let mut out = String::new();
    let mut run = String::new();
    for c in word.chars() {
        if !needs_printf(c) {
            run.push(c);
            continue;
        }
        if !run.is_empty() {
            out.push_str(&single_quoted(&run));
            run.clear();
        }
        let mut utf8 = [0u8; 4];
        for byte in c.encode_utf8(&mut utf8).bytes() {
            let _ = write!(out, "\"$(printf '\\{byte:03o}')\"");
        }
    }
    if !run.is_empty() {
        out.push_str(&single_quoted(&run));
    }
    out
}

fn needs_printf(c: char) -> bool {
    c.is_control() && c != '\n'
}

fn single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `sh -c 'printf %s WORD'` makes of a quoted word.
    fn through_sh(quoted: &str) -> Vec<u8> {
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf %s {quoted}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{quoted}");
        out.stdout
    }

    #[test]
    fn quoted_words_survive_sh_exactly_and_show_no_control_character() {
        for word in [
            "plain",
            "with space",
            "quote's \"double\"",
            "$(touch PWNED) `x` ;|&",
            "new\nline\n",
            "\u{1b}[31mred\u{1b}[0m\ttab\r",
            "bell\u{7}\u{1b}]0;title\u{7}",
            "c1 \u{9b}2J",
            "ünïcödé-流れ-🚀",
            "-rf",
        ] {
            let q = quote(word);
            assert!(
                !q.chars().any(needs_printf),
                "{word:?} quoted as {q:?} shows a control character"
            );
            assert_eq!(through_sh(&q), word.as_bytes(), "{word:?} quoted as {q:?}");
        }
        assert_eq!(quote("stream/A"), "stream/A");
        assert_eq!(quote("a b"), "'a b'");
    }
}
