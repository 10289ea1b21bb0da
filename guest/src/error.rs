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
        let stack = string_property(error, "stack");
        // The whole stack goes where a browser prints an uncaught error: to the console
        // (`js_debug()`'s `last_console`, or the plugin's under `plugins.console`).
        // (Not for a syntax error: its position is all there is, and the message has it.)
        if let Some(stack) = stack.as_deref().filter(|stack| !stack.trim().is_empty() && name != "SyntaxError") {
            crate::console::append(&format!("Uncaught {name}: {message}\n{}\n", stack.trim_end()));
        }
        let text = match stack.as_deref().and_then(first_position) {
            Some((file, line)) if file == crate::SCRIPT_NAME => format!("{name}: {message} (line {line})"),
            Some((module, line)) => format!("{name}: {message} (module '{module}', line {line})"),
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
        ("InternalError", "interrupted") if crate::determinism::exhausted() => ErrorKind::StepLimit,
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

/// Finds the first position in a script or module in a QuickJS stack trace
/// (`    at f (script:3:7)`, `    at turf:1:5`) and returns its file (the script, or the module's
/// name) and line. Native frames have none.
fn first_position(stack: &str) -> Option<(&str, u32)> {
    stack.lines().find_map(|frame| {
        let frame = frame.trim().strip_prefix("at ")?;
        // `f (file:line:col)` or `file:line:col`.
        let location = match frame.rfind(" (") {
            Some(open) if frame.ends_with(')') => &frame[open + 2..frame.len() - 1],
            _ => frame,
        };
        let mut parts = location.rsplitn(3, ':');
        let (_column, line, file) = (parts.next()?, parts.next()?, parts.next()?);
        // jsbox's own helpers (`<jsbox>`) are not where the error is.
        (!file.starts_with('<')).then_some(())?;
        Some((file, line.parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_position_in_a_stack_trace() {
        assert_eq!(first_position("    at f (script:3:7)\n    at <eval> (script:9:1)\n"), Some(("script", 3)));
        assert_eq!(first_position("    at script:12:4\n"), Some(("script", 12)));
        assert_eq!(first_position("    at length (turf:1:5093)\n    at final (script:4:40)\n"), Some(("turf", 1)));
        assert_eq!(first_position("    at g (geo/a b:7:1)\n"), Some(("geo/a b", 7)));
        assert_eq!(first_position("    at <anonymous> (native)\n    at f (script:2:1)\n"), Some(("script", 2)));
        assert_eq!(first_position("    at require (<jsbox>:1:9)\n    at <anonymous> (cjs:1:12)\n"), Some(("cjs", 1)));
    }
}
