//! The error a command returns to `main`: what happened, its causes, a hint, and an exit code.
//!
//! Each module keeps its own `thiserror` enum; implementing [`Diagnostic`] for it says which
//! exit code and hint it maps to, and `?` converts it into an [`Error`].

use std::fmt;

use crate::exit_codes;

/// Extra information a module error gives the user beyond its message.
pub trait Diagnostic: std::error::Error + Send + Sync + 'static {
    /// What the user can do about it.
    fn hint(&self) -> Option<String> {
        None
    }

    /// The process exit code (see [`crate::exit_codes`]).
    fn exit_code(&self) -> i32 {
        exit_codes::FAILURE
    }
}

/// A failed command, as rendered by `main`: `error: …`, the cause chain, then `hint: …`.
pub struct Error {
    source: Box<dyn std::error::Error + Send + Sync>,
    hint: Option<String>,
    code: i32,
}

impl Error {
    /// An error from a plain message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            source: message.into().into(),
            hint: None,
            code: exit_codes::FAILURE,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_code(mut self, code: i32) -> Self {
        self.code = code;
        self
    }

    pub fn exit_code(&self) -> i32 {
        self.code
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The message followed by each cause, outermost first.
    pub fn chain(&self) -> Vec<String> {
        let mut out = vec![self.source.to_string()];
        let mut next = self.source.source();
        while let Some(cause) = next {
            let text = cause.to_string();
            // thiserror messages often embed their source already; don't say it twice.
            if !out.last().is_some_and(|last| last.contains(&text)) {
                out.push(text);
            }
            next = cause.source();
        }
        out
    }
}

impl<E: Diagnostic> From<E> for Error {
    fn from(err: E) -> Self {
        let hint = err.hint();
        let code = err.exit_code();
        Self {
            source: Box::new(err),
            hint,
            code,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.chain().join(": "))?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer thing failed")]
    struct Outer(#[source] std::io::Error);

    impl Diagnostic for Outer {
        fn hint(&self) -> Option<String> {
            Some("try again".into())
        }
        fn exit_code(&self) -> i32 {
            exit_codes::NO_DATABASE
        }
    }

    #[test]
    fn converts_module_errors_with_hint_code_and_chain() {
        let err: Error = Outer(std::io::Error::other("disk on fire")).into();
        assert_eq!(err.exit_code(), exit_codes::NO_DATABASE);
        assert_eq!(err.hint(), Some("try again"));
        assert_eq!(err.chain(), vec!["outer thing failed", "disk on fire"]);
    }
}
