//! Turning a failed call into a short, user-facing [`GuestError`]: the JS error's type, message
//! and the line of the script it came from, as `TypeError: x is not a function (line 3)`.

use jsbox_abi::ErrorKind;
use rquickjs::{convert::Coerced, Ctx, FromJs, Object, Value};

/// Longest message kept from a thrown value; the rest is cut with an ellipsis.
const MAX_MESSAGE_CHARS: usize = 1000;

/// A call that produced no value, and why.
#[derive(Debug)]
pub struct GuestError {
    pub kind: ErrorKind,
    pub message: String,
}

impl GuestError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let mut message: String = message.into();
        if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
            message.truncate(cut);
            message.push('…');
        }
        GuestError { kind, message }
    }

    /// Describes an rquickjs error, taking the pending JS exception when there is one.
    pub fn from_js(ctx: &Ctx<'_>, error: rquickjs::Error) -> Self {
        match error {
            rquickjs::Error::Exception => describe_exception(ctx, ctx.catch()),
            rquickjs::Error::Allocation => GuestError::new(ErrorKind::OutOfMemory, "out of memory"),
            other => GuestError::new(ErrorKind::Exception, other.to_string()),
        }
    }
}

/// Describes a thrown value: an `Error` by its name, message and line; anything else by its
/// string form.
fn describe_exception<'js>(ctx: &Ctx<'js>, thrown: Value<'js>) -> GuestError {
    if thrown.is_error() {
        let error = thrown.as_object().expect("an Error is an object");
        let name = string_property(error, "name").unwrap_or_else(|| "Error".to_owned());
        let message = string_property(error, "message").unwrap_or_default();
        let kind = classify(&name, &message);
        let line = string_property(error, "stack").as_deref().and_then(script_line);
        let text = match line {
            Some(line) => format!("{name}: {message} (line {line})"),
            None => format!("{name}: {message}"),
        };
        return GuestError::new(kind, text);
    }
    if thrown.is_null() {
        // What QuickJS throws when it cannot allocate even the error object.
        return GuestError::new(ErrorKind::OutOfMemory, "out of memory");
    }
    let shown = Coerced::<String>::from_js(ctx, thrown).map(|s| s.0).unwrap_or_else(|_| {
        let _ = ctx.catch();
        "(a value that cannot be converted to a string)".to_owned()
    });
    GuestError::new(ErrorKind::Exception, format!("uncaught exception: {shown}"))
}

/// Maps QuickJS's resource errors to their own kinds so that the host reports them as limits.
fn classify(name: &str, message: &str) -> ErrorKind {
    match (name, message) {
        ("InternalError", "out of memory") => ErrorKind::OutOfMemory,
        ("RangeError", "Maximum call stack size exceeded") => ErrorKind::StackOverflow,
        ("InternalError", m) if m.starts_with("stack overflow") => ErrorKind::StackOverflow,
        _ => ErrorKind::Exception,
    }
}

/// Reads a property as a string, treating getters that throw as absent.
fn string_property(object: &Object<'_>, key: &str) -> Option<String> {
    match object.get::<_, Option<Coerced<String>>>(key) {
        Ok(value) => value.map(|s| s.0),
        Err(_) => {
            let _ = object.ctx().catch();
            None
        }
    }
}

/// Finds the first position in the script in a QuickJS stack trace (`    at f (script:3:7)`)
/// and returns its line.
fn script_line(stack: &str) -> Option<u32> {
    let prefix = format!("{}:", crate::SCRIPT_NAME);
    stack.match_indices(&prefix).find_map(|(at, _)| {
        let rest = &stack[at + prefix.len()..];
        let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
        digits.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_line_in_a_stack_trace() {
        assert_eq!(script_line("    at f (script:3:7)\n    at <eval> (script:9:1)\n"), Some(3));
        assert_eq!(script_line("    at script:12:4\n"), Some(12));
        assert_eq!(script_line("    at <anonymous> (native)\n"), None);
    }
}
