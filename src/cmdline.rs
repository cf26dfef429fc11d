//! Command lines without a shell. The worker command and `post_create` are configured as one
//! string of shell words; here they are split (one splitter: `shlex`), their program found as
//! `execvp` would, and words shown back quoted for pasting into a shell (one quoter).
//!
//! Nothing here runs a shell. What a *program* does with its arguments is another matter: a
//! word that `sh -c` or `python -c` runs as code is re-parsed, so [`scripts`] finds those words
//! (the worker refuses placeholders in them).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// The words of `cmd` as a POSIX shell would split them (quotes and backslashes honoured, no
/// expansion); `None` if its quotes are unbalanced.
pub fn split(cmd: &str) -> Option<Vec<String>> {
    shlex::split(cmd)
}

/// `word` quoted for a POSIX shell, only when it needs it: exact when pasted (byte for byte),
/// and showing no control character but the line break on the terminal it is printed on.
///
/// A control character other than `\n` (an escape, a tab, a carriage return) cannot be shown
/// raw, so it is written as `"$(printf '\ooo')"` beside single-quoted parts; a line break stays
/// inside the quotes (safe on a terminal, and `$(…)` would strip it). A NUL byte, which no
/// shell word can hold, is left inside the quotes for the printer to escape.
pub fn quote(word: &str) -> Cow<'_, str> {
    if !word.chars().any(needs_printf) {
        // `try_quote` refuses only a NUL byte: quote it anyway, so the text is never pasted
        // unquoted.
        return shlex::try_quote(word).unwrap_or_else(|_| Cow::Owned(single_quoted(word)));
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
            out.push_str(&format!("\"$(printf '\\{byte:03o}')\""));
        }
    }
    if !run.is_empty() {
        out.push_str(&single_quoted(&run));
    }
    Cow::Owned(out)
}

/// A control character that [`quote`] writes as a `printf`.
fn needs_printf(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\0'
}

fn single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Resolves `program` as `execvp` would from the folder `dir`: a path with a `/` (relative ones
/// against `dir`), or a name searched on `PATH` (relative `PATH` entries against `dir` too).
/// Only executable files count.
pub fn find_program(program: &str, dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = dir.join(program);
        return executable(&path).then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| dir.join(d).join(program))
        .find(|p| executable(p))
}

/// A word of a command line that a program runs as code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Its index among the words.
    pub index: usize,
    /// The program that runs it (`sh`, `python3`, `env -S`, …).
    pub runner: String,
}

/// Every word of `words` that some program in it parses as code: the script after `-c` of a
/// shell, the `-c`/`-e`/`--eval` code of common interpreters, an `awk` program, the string
/// `env -S` splits. Programs are looked for at every position, so wrappers (`env`, `nice`,
/// `docker exec box sh -c …`) are seen through.
pub fn scripts(words: &[String]) -> Vec<Script> {
    let mut found = Vec::new();
    for (at, word) in words.iter().enumerate() {
        let name = word.rsplit('/').next().unwrap_or(word);
        let index = match runner(name) {
            Some(Runner::Shell) => shell_script(words, at),
            Some(Runner::Interpreter(flags)) => flag_script(words, at, &flags),
            Some(Runner::Awk) => awk_program(words, at),
            None => None,
        };
        if let Some(index) = index {
            found.push(Script {
                index,
                runner: name.to_string(),
            });
        }
    }
    found
}

enum Runner {
    /// Its first operand is a script when an option cluster holds `c`.
    Shell,
    /// Runs the word after (or attached to) one of its script flags.
    Interpreter(Flags),
    /// Its first operand is the program, unless `-f` names a file.
    Awk,
}

/// The options of an interpreter that matter for finding its code.
struct Flags {
    /// Short flags whose value is code (`c` of `python -c`).
    script: &'static [char],
    /// Long flags whose value is code (`--eval`).
    long: &'static [&'static str],
    /// Options that take the next word as their value (`-W error`), so it is no operand.
    with_value: &'static [&'static str],
}

fn runner(name: &str) -> Option<Runner> {
    // `python3.12`, `perl5.36`, `ruby3.2`, `lua5.4`: a family name and a version.
    let family = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let flags = |script, long, with_value| {
        Some(Runner::Interpreter(Flags {
            script,
            long,
            with_value,
        }))
    };
    match family {
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "ash" | "yash" | "fish" | "csh"
        | "tcsh" => Some(Runner::Shell),
        "python" | "pypy" => flags(&['c'], &[], &["-W", "-X"]),
        "perl" => flags(&['e', 'E'], &[], &["-I", "-M", "-m"]),
        "ruby" => flags(&['e'], &[], &["-I", "-r", "-C", "-E", "-F"]),
        "node" | "nodejs" | "bun" => flags(
            &['e', 'p'],
            &["--eval", "--print"],
            &[
                "-r",
                "--require",
                "--import",
                "--loader",
                "-C",
                "--conditions",
            ],
        ),
        "php" => flags(&['r'], &[], &["-c", "-d", "-z"]),
        "lua" | "osascript" => flags(&['e'], &[], &["-l"]),
        "Rscript" => flags(&['e'], &[], &[]),
        // `env -S STRING` splits STRING into words itself.
        "env" => flags(
            &['S'],
            &["--split-string"],
            &["-u", "--unset", "-C", "--chdir"],
        ),
        "awk" | "gawk" | "mawk" | "nawk" => Some(Runner::Awk),
        _ => None,
    }
}

/// The script of `sh [options] -c SCRIPT [args…]` (also `-ec`, `-o pipefail -c`, `--login`).
fn shell_script(words: &[String], at: usize) -> Option<usize> {
    let mut takes_script = false;
    let mut i = at + 1;
    while let Some(word) = words.get(i) {
        match word.as_str() {
            "--" => return takes_script.then_some(i + 1).filter(|&j| j < words.len()),
            "-o" | "+o" | "-O" | "+O" | "--rcfile" | "--init-file" => i += 1,
            "--command" => return Some(i + 1).filter(|&j| j < words.len()),
            w if w.starts_with("--command=") => return Some(i),
            w if w.starts_with("--") => {}
            w if (w.starts_with('-') || w.starts_with('+')) && w.len() > 1 => {
                takes_script |= w.contains('c');
            }
            _ => return takes_script.then_some(i),
        }
        i += 1;
    }
    None
}

/// The code of `python -c CODE`, `perl -ne CODE`, `node --eval=CODE`, `ruby -e'CODE'`: the word
/// after a script flag, or the word itself when the code is attached to it. Stops at the first
/// operand: flags after a script file are that script's own.
fn flag_script(words: &[String], at: usize, flags: &Flags) -> Option<usize> {
    let next = |i: usize| Some(i + 1).filter(|&j| j < words.len());
    let mut i = at + 1;
    while let Some(word) = words.get(i) {
        if let Some(flag) = flags.long.iter().find(|f| word.starts_with(**f)) {
            match &word[flag.len()..] {
                "" => return next(i),
                attached if attached.starts_with('=') => return Some(i),
                _ => {}
            }
        }
        if flags.with_value.contains(&word.as_str()) {
            i += 2;
            continue;
        }
        if word == "--" || word == "-" || !word.starts_with('-') {
            return None;
        }
        if !word.starts_with("--") {
            let cluster = &word[1..];
            let flag = cluster
                .char_indices()
                .find(|(_, c)| flags.script.contains(c));
            if let Some((pos, c)) = flag {
                let attached = &cluster[pos + c.len_utf8()..];
                return if attached.is_empty() {
                    next(i)
                } else {
                    Some(i)
                };
            }
        }
        i += 1;
    }
    None
}

/// The program of `awk [-F x] [-v a=b] 'PROGRAM' files…` (none with `-f FILE`).
fn awk_program(words: &[String], at: usize) -> Option<usize> {
    let mut i = at + 1;
    while let Some(word) = words.get(i) {
        match word.as_str() {
            "-f" | "--file" => return None,
            "-F" | "-v" | "--assign" | "--field-separator" => i += 1,
            "--" => return Some(i + 1).filter(|&j| j < words.len()),
            w if w.starts_with('-') && w.len() > 1 => {}
            _ => return Some(i),
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(cmd: &str) -> Vec<String> {
        split(cmd).unwrap()
    }

    /// The script words of `cmd`, as text.
    fn script_words(cmd: &str) -> Vec<String> {
        let w = words(cmd);
        scripts(&w)
            .into_iter()
            .map(|s| w[s.index].clone())
            .collect()
    }

    #[test]
    fn splits_like_a_shell_without_expanding() {
        assert_eq!(
            words(r#"claude -p 'a b' "c \"d\"" e\ f $HOME"#),
            ["claude", "-p", "a b", r#"c "d""#, "e f", "$HOME"]
        );
        assert_eq!(split("claude 'open"), None);
        assert_eq!(words("   "), Vec::<String>::new());
    }

    #[test]
    fn quotes_only_when_needed_and_never_leaves_a_word_bare() {
        assert_eq!(quote("stream/A-1"), "stream/A-1");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r#""it's""#);
        assert_eq!(quote("$(x)"), "'$(x)'");
        assert_eq!(quote("nul\0x'y"), "'nul\0x'\\''y'");
        for hostile in [
            "a b",
            "$(touch x); y",
            "`z`",
            "it's \"q\"",
            "new\nline",
            "-rf",
        ] {
            assert_eq!(split(&quote(hostile)).unwrap(), [hostile], "{hostile}");
        }
    }

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
    }

    #[test]
    fn finds_programs_on_path_and_relative_ones() {
        assert!(find_program("sh", Path::new("/")).is_some());
        assert!(find_program("no-such-program-here", Path::new("/")).is_none());
        assert!(find_program("./nope", Path::new("/")).is_none());
        assert_eq!(
            find_program("bin/sh", Path::new("/")),
            Some(PathBuf::from("/bin/sh"))
        );
    }

    #[test]
    fn finds_the_scripts_of_shells() {
        assert_eq!(
            script_words("sh -c 'run {stream}' x {stream}"),
            ["run {stream}"]
        );
        assert_eq!(script_words("/bin/bash -ec 'a'"), ["a"]);
        assert_eq!(script_words("bash -o pipefail -lc 'b' c"), ["b"]);
        assert_eq!(script_words("env A=1 nice -n 5 zsh -c 'c'"), ["c"]);
        assert_eq!(script_words("docker exec box dash -x -c d"), ["d"]);
        assert_eq!(script_words("fish --command='e f'"), ["--command=e f"]);
        assert_eq!(script_words("ksh -- -c"), Vec::<String>::new());
        // A shell given a script file runs the file; its arguments are data.
        assert_eq!(script_words("bash ./run.sh {stream}"), Vec::<String>::new());
        assert_eq!(script_words("sh -c"), Vec::<String>::new());
    }

    #[test]
    fn finds_the_code_of_interpreters() {
        assert_eq!(
            script_words("python3 -c 'import os' {stream}"),
            ["import os"]
        );
        assert_eq!(script_words("python3.12 -uc code"), ["code"]);
        assert_eq!(script_words("perl -lne 'print'"), ["print"]);
        assert_eq!(script_words("ruby -e'puts 1'"), ["-eputs 1"]);
        assert_eq!(script_words("node --eval=x"), ["--eval=x"]);
        assert_eq!(script_words("node --print y"), ["y"]);
        assert_eq!(script_words("php -r z"), ["z"]);
        assert_eq!(script_words("awk -F: '{print $1}' f"), ["{print $1}"]);
        assert_eq!(script_words("env -S 'claude -p'"), ["claude -p"]);
        assert_eq!(script_words("python -W error -X dev -c x"), ["x"]);
        assert_eq!(script_words("node --no-warnings -r m -e x"), ["x"]);
        assert_eq!(
            script_words("env -u HOME A=1 claude -p"),
            Vec::<String>::new()
        );
        // Flags after the script file belong to the script.
        assert_eq!(
            script_words("python3 agent.py -c {stream}"),
            Vec::<String>::new()
        );
        assert_eq!(
            script_words("awk -f prog.awk {stream}"),
            Vec::<String>::new()
        );
        assert_eq!(
            script_words("claude -p --output-format stream-json {prompt}"),
            Vec::<String>::new()
        );
    }
}
