//! `console.log` and friends. The sandbox has no stdout: what a script logs is kept in a bounded
//! buffer that the host may read after the call (`jsbox_console`), and never reaches the host's
//! own output.

use std::cell::RefCell;

use rquickjs::{convert::Coerced, function::Rest, Ctx, FromJs, Function, Object, Value};

/// Console bytes kept per call; the rest is dropped and marked with an ellipsis.
const MAX_CONSOLE_BYTES: usize = 4096;
const TRUNCATED: &str = "…";

thread_local! {
    static OUTPUT: RefCell<String> = const { RefCell::new(String::new()) };
}

pub fn install(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    let console = Object::new(ctx.clone())?;
    for name in ["log", "info", "warn", "error", "debug", "trace"] {
        console.set(name, Function::new(ctx.clone(), log)?.with_name(name)?)?;
    }
    ctx.globals().set("console", console)
}

pub fn clear() {
    OUTPUT.with_borrow_mut(String::clear);
}

pub fn with_output<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    OUTPUT.with_borrow(|out| f(out.as_bytes()))
}

/// One console line: the arguments' string forms separated by spaces, as browsers print them.
fn log<'js>(ctx: Ctx<'js>, args: Rest<Value<'js>>) {
    let mut line = String::new();
    for (i, arg) in args.0.into_iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        line.push_str(&display(&ctx, arg));
    }
    line.push('\n');
    append(&line);
}

fn display<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> String {
    let shown = if value.is_object() && !value.is_function() && !value.is_error() {
        ctx.json_stringify(value).ok().flatten().and_then(|s| s.to_string().ok())
    } else {
        Coerced::<String>::from_js(ctx, value).ok().map(|s| s.0)
    };
    shown.unwrap_or_else(|| {
        let _ = ctx.catch();
        "[unprintable]".to_owned()
    })
}

pub fn append(text: &str) {
    OUTPUT.with_borrow_mut(|out| {
        if out.len() >= MAX_CONSOLE_BYTES {
            return; // already full (and marked truncated)
        }
        let room = MAX_CONSOLE_BYTES.saturating_sub(out.len());
        if text.len() <= room {
            out.push_str(text);
        } else {
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push_str(&text[..cut]);
            out.push_str(TRUNCATED);
        }
    });
}
