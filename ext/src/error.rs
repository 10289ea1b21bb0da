//! The one error type of the extension. Every message names the SQL function and the cause:
//! `js_eval: ReferenceError: nosuch is not defined (line 3)`.

use std::borrow::Cow;
use std::fmt;

/// Why a call into the sandbox, or the preparation of its arguments, failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The script threw, or did not compile. The text is `Name: message (line N)`.
    #[error("{0}")]
    Exception(String),
    #[error("invalid JSON input: {0}")]
    InvalidJson(String),
    /// The script's value has no SQL counterpart.
    #[error("{0}")]
    UnsupportedResult(String),
    #[error("time limit of {0} ms exceeded")]
    TimeLimit(u64),
    /// The connection was interrupted (`sqlite3_interrupt`) while the call ran.
    #[error("interrupted")]
    Interrupted,
    #[error("memory limit of {0} MiB exceeded")]
    MemoryLimit(u64),
    #[error("stack overflow: {0}")]
    StackOverflow(String),
    #[error("{what} is not valid UTF-8 (invalid byte at offset {offset})")]
    InvalidUtf8 { what: Cow<'static, str>, offset: usize },
    #[error("{what} must be {expected}, not {got}")]
    ArgumentType { what: &'static str, expected: &'static str, got: &'static str },
    /// The script is unusable as given (e.g. it holds a NUL character).
    #[error("{0}")]
    Script(String),
    /// A `js_config` setting is unknown or out of range.
    #[error("{0}")]
    Config(String),
    /// A stored plugin is missing, misdeclared or unusable as asked.
    #[error("{0}")]
    Plugin(String),
    /// Every sandbox slot of the process is in use.
    #[error("too many sandboxes in use at once ({0}); try again when other statements finish")]
    PoolExhausted(u32),
    /// The guest trapped for a reason that is not a limit: a bug in the guest, not the script.
    #[error("sandbox fault: {0}")]
    Trap(String),
    /// The extension could not start its engine, or the guest broke the protocol.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A [`CallError`] attributed to the SQL function that reports it.
#[derive(Debug)]
pub struct FunctionError {
    /// The SQL function (or plugin) that reports the error.
    pub function: String,
    pub error: CallError,
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.function, self.error)
    }
}

impl std::error::Error for FunctionError {}

impl CallError {
    /// The rusqlite error that makes SQLite report this error for `function`.
    pub fn in_function(self, function: &str) -> rusqlite::Error {
        if self == CallError::Interrupted {
            // SQLite's own code and message ("interrupted"), so that the statement fails the
            // way any interrupted statement does. (With a message of our own, rusqlite would
            // set it after the code, and `sqlite3_result_error` turns the code into
            // SQLITE_ERROR.)
            let code = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERRUPT);
            return rusqlite::Error::SqliteFailure(code, None);
        }
        rusqlite::Error::UserFunctionError(Box::new(FunctionError { function: function.to_owned(), error: self }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_function_and_the_cause() {
        let err = CallError::TimeLimit(1000).in_function("js_eval");
        assert_eq!(err.to_string(), "js_eval: time limit of 1000 ms exceeded");
        let err = CallError::InvalidUtf8 { what: "the JSON input".into(), offset: 3 }.in_function("js_eval");
        assert_eq!(err.to_string(), "js_eval: the JSON input is not valid UTF-8 (invalid byte at offset 3)");
    }
}
