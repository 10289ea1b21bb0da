//! Reading SQL arguments into what the sandbox takes, with errors that say which argument is
//! wrong and why.

use rusqlite::functions::Context;
use rusqlite::types::ValueRef;

use crate::abi::Input;
use crate::error::CallError;

/// The SQL type name of a value, for error messages.
pub fn type_name(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "INTEGER",
        ValueRef::Real(_) => "REAL",
        ValueRef::Text(_) => "TEXT",
        ValueRef::Blob(_) => "BLOB",
    }
}

/// Checks that TEXT (or a BLOB holding text, as the shell's `readfile()` returns) is UTF-8.
pub fn utf8<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a [u8], CallError> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(bytes),
        Err(e) => Err(CallError::InvalidUtf8 { what: what.into(), offset: e.valid_up_to() }),
    }
}

/// A script argument: TEXT or BLOB holding UTF-8; `None` for SQL NULL.
pub fn script<'a>(ctx: &'a Context<'_>, idx: usize) -> Result<Option<&'a [u8]>, CallError> {
    match ctx.get_raw(idx) {
        ValueRef::Null => Ok(None),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => utf8(bytes, "the script").map(Some),
        other => Err(CallError::ArgumentType { what: "the script", expected: "TEXT", got: type_name(other) }),
    }
}

/// A JSON input argument: TEXT or BLOB holding JSON, a number, or NULL (`data` is null).
/// JSON goes through the guest's serde_json transcoder, the faster of its two JSON paths
/// (`docs/abi.md`).
pub fn json_input<'a>(ctx: &'a Context<'_>, idx: usize) -> Result<Input<'a>, CallError> {
    Ok(match ctx.get_raw(idx) {
        ValueRef::Null => Input::Null,
        ValueRef::Integer(i) => Input::Integer(i),
        ValueRef::Real(f) => Input::Real(f),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Input::JsonSerde(utf8(bytes, "the JSON input")?),
    })
}
