//! The worker command: one string of shell words with the placeholders `{prompt}`, `{stream}`,
//! `{worktree}` and `{prompt_file}`, run without a shell.
//!
//! Invariants:
//! * The string is split into words once, before anything is filled, and each word is filled
//!   in one pass ([`template`]): a value always lands inside one argument, as written, whatever
//!   it holds.
//! * No placeholder sits in a word that a program runs as code (`sh -c '… {stream}'`,
//!   `python -c`): [`WorkerCommand::parse`] refuses it, since a stream id like `$(…)` would be
//!   run. The same values are in the worker's `ORCHESTRATE_*` variables, and a placeholder
//!   given as a word of its own after the script (`sh -c '… "$1"' sh {stream}`) is safe.
//! * A prompt longer than [`INLINE_PROMPT_MAX`] is never an argument (Linux refuses one past
//!   128 KiB with `Argument list too long`): the `{prompt}` word is left out and the worker
//!   reads the prompt on stdin, as `claude -p` does without one; it is always in the file
//!   `{prompt_file}` / `ORCHESTRATE_PROMPT_FILE` names too.

use std::path::{Path, PathBuf};

use super::WorkerError;
use super::template;
use crate::cmdline;

/// The placeholders of the worker command.
pub const PLACEHOLDERS: [&str; 4] = ["prompt", "stream", "worktree", "prompt_file"];

/// The longest prompt passed as an argument, in bytes: half the kernel's limit for one
/// argument (128 KiB), leaving room for the rest of the command line and the environment.
pub const INLINE_PROMPT_MAX: usize = 64 * 1024;

/// A worker command, split and checked.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    text: String,
    words: Vec<String>,
}

/// What the placeholders are filled with.
pub struct Values<'a> {
    pub prompt: &'a str,
    pub stream: &'a str,
    pub worktree: &'a Path,
    pub prompt_file: &'a Path,
}

/// A filled command: the worker's argv, and where its prompt is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filled {
    pub argv: Vec<String>,
    /// The file that holds the prompt (always written: `ORCHESTRATE_PROMPT_FILE`).
    pub prompt_file: PathBuf,
    /// The prompt is not in `argv`: the worker reads it from `prompt_file` on stdin.
    pub prompt_on_stdin: bool,
}

impl WorkerCommand {
    /// Splits `text` into words and refuses a placeholder inside a script.
    pub fn parse(text: &str) -> Result<Self, WorkerError> {
        let words = cmdline::split(text).ok_or_else(|| WorkerError::BadCommand {
            command: text.to_string(),
            message: "its quotes are unbalanced".into(),
        })?;
        if words.is_empty() {
            return Err(WorkerError::EmptyCommand);
        }
        for script in cmdline::scripts(&words) {
            let word = &words[script.index];
            let used = template::used(word, template::COMMAND, &PLACEHOLDERS);
            if let Some(placeholder) = used.first() {
                return Err(WorkerError::PlaceholderInScript {
                    command: text.to_string(),
                    placeholder: format!("{{{placeholder}}}"),
                    runner: script.runner,
                });
            }
        }
        Ok(Self {
            text: text.to_string(),
            words,
        })
    }

    /// The program: the first word, unfilled.
    pub fn program(&self) -> &str {
        &self.words[0]
    }

    /// The program is Claude Code (`claude`, by name or path): it can resume a session and
    /// take a spending cap.
    pub fn is_claude(&self) -> bool {
        Path::new(self.program())
            .file_name()
            .is_some_and(|n| n == "claude")
    }

    /// Fills every word in one pass; a prompt past [`INLINE_PROMPT_MAX`] goes to stdin.
    pub fn fill(&self, v: &Values<'_>) -> Result<Filled, WorkerError> {
        let inline = v.prompt.len() <= INLINE_PROMPT_MAX;
        let (worktree, prompt_file) = (
            v.worktree.display().to_string(),
            v.prompt_file.display().to_string(),
        );
        let values = [
            ("prompt", v.prompt),
            ("stream", v.stream),
            ("worktree", worktree.as_str()),
            ("prompt_file", prompt_file.as_str()),
        ];
        let mut argv = Vec::with_capacity(self.words.len());
        let mut prompt_on_stdin = false;
        for word in &self.words {
            let has_prompt = !template::used(word, template::COMMAND, &["prompt"]).is_empty();
            if has_prompt && !inline {
                // Only a word of its own can be left out, and never the program.
                if word != "{prompt}" || argv.is_empty() {
                    return Err(WorkerError::PromptTooLarge {
                        bytes: v.prompt.len(),
                        word: word.clone(),
                    });
                }
                prompt_on_stdin = true;
                continue;
            }
            argv.push(template::fill(word, template::COMMAND, &values));
        }
        Ok(Filled {
            argv,
            prompt_file: v.prompt_file.to_path_buf(),
            prompt_on_stdin,
        })
    }

    /// The command as configured (placeholders unfilled, so a log header shows no prompt).
    pub fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(cmd: &str, prompt: &str, stream: &str) -> Result<Filled, WorkerError> {
        WorkerCommand::parse(cmd)?.fill(&Values {
            prompt,
            stream,
            worktree: Path::new("/w"),
            prompt_file: Path::new("/run/s/prompt.md"),
        })
    }

    #[test]
    fn splits_words_and_fills_placeholders_per_word() {
        let f = fill(
            "claude -p --x 'a b' {prompt} --name={stream} {worktree} {prompt_file}",
            "do it; rm -rf /",
            "Stream-A",
        )
        .unwrap();
        assert_eq!(
            f.argv,
            [
                "claude",
                "-p",
                "--x",
                "a b",
                "do it; rm -rf /",
                "--name=Stream-A",
                "/w",
                "/run/s/prompt.md"
            ]
        );
        assert!(!f.prompt_on_stdin);
        assert!(matches!(
            WorkerCommand::parse("claude 'open"),
            Err(WorkerError::BadCommand { .. })
        ));
        assert!(matches!(
            WorkerCommand::parse("  "),
            Err(WorkerError::EmptyCommand)
        ));
    }

    #[test]
    fn the_default_command_is_valid_and_uses_known_placeholders_only() {
        let default = crate::config::DEFAULT_WORKER_CMD;
        assert_eq!(WorkerCommand::parse(default).unwrap().program(), "claude");
        assert!(template::unknown(default, template::COMMAND, &PLACEHOLDERS).is_empty());
        assert_eq!(
            WorkerCommand::parse("'/opt/my agent/run' {prompt}")
                .unwrap()
                .program(),
            "/opt/my agent/run"
        );
    }

    #[test]
    fn a_filled_value_is_never_filled_again() {
        let f = fill(
            "w {prompt} {stream}",
            "say {stream} in {worktree}",
            "{prompt}",
        )
        .unwrap();
        assert_eq!(f.argv, ["w", "say {stream} in {worktree}", "{prompt}"]);
    }

    #[test]
    fn a_large_prompt_leaves_the_command_line_for_stdin() {
        let big = "x".repeat(INLINE_PROMPT_MAX + 1);
        let f = fill("claude -p {prompt} --verbose", &big, "S").unwrap();
        assert_eq!(f.argv, ["claude", "-p", "--verbose"]);
        assert!(f.prompt_on_stdin);
        let at_limit = "x".repeat(INLINE_PROMPT_MAX);
        assert!(
            !fill("claude {prompt}", &at_limit, "S")
                .unwrap()
                .prompt_on_stdin
        );
        assert!(matches!(
            fill("agent --prompt={prompt}", &big, "S"),
            Err(WorkerError::PromptTooLarge { .. })
        ));
        assert!(matches!(
            fill("{prompt}", &big, "S"),
            Err(WorkerError::PromptTooLarge { .. })
        ));
    }

    #[test]
    fn a_placeholder_in_a_script_is_refused_and_one_after_it_is_not() {
        for cmd in [
            "sh -c 'agent {stream}'",
            "env A=1 bash -ec 'exec agent \"{prompt}\"'",
            "python3 -c 'import os; os.system(\"{worktree}\")'",
            "perl -e 'system q({prompt_file})'",
        ] {
            let err = WorkerCommand::parse(cmd).unwrap_err();
            assert!(
                matches!(err, WorkerError::PlaceholderInScript { .. }),
                "{cmd}: {err:?}"
            );
        }
        let f = fill("sh -c 'exec agent \"$1\"' sh {stream}", "", "$(x); y").unwrap();
        assert_eq!(f.argv[4], "$(x); y");
        // A script without placeholders, or an unknown one, is the user's own business.
        assert!(WorkerCommand::parse("sh -c 'exec claude -p \"$ORCHESTRATE_STREAM\"'").is_ok());
        assert!(WorkerCommand::parse("sh -c 'echo {nope}'").is_ok());
    }
}
