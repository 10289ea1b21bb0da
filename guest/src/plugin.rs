//! Stored plugins inside the sandbox: compiling a plugin's source to QuickJS bytecode once,
//! loading that bytecode into an instance, and calling the plugin's functions with SQL arguments
//! while an aggregate's state stays here, in the instance, for the whole group.
//!
//! The plugin contract (`docs/functions.md`): a scalar defines `main(...args)`; an aggregate
//! `init()`, `step(state, ...args)` and `final(state)`; a window also `inverse(state, ...args)`
//! and, optionally, `value(state)`.

use std::cell::RefCell;

use jsbox_abi::{Arg, ErrorKind, PluginKind, PluginOp};
use rquickjs::{qjs, Ctx, Function, Persistent, TypedArray, Value};

use crate::error::GuestError;
use crate::json;
use crate::values::{self, integer_to_js};

thread_local! {
    /// The loaded plugin's functions, resolved once at load.
    static FUNCTIONS: RefCell<Vec<(&'static str, Persistent<Function<'static>>)>> = const { RefCell::new(Vec::new()) };
    /// The aggregate state of the group this instance serves.
    static STATE: RefCell<Option<Persistent<Value<'static>>>> = const { RefCell::new(None) };
}

/// Compiles `source`, runs it (so that its functions are defined), checks that it defines what
/// `kind` needs, and returns its bytecode for later instances. `source` must be followed by a
/// NUL byte in memory (the request buffer is).
pub fn compile(ctx: &Ctx<'_>, source: &[u8], kind: PluginKind, out: &mut Vec<u8>) -> Result<(), GuestError> {
    let ctx_ptr = ctx.as_raw().as_ptr();
    let filename = std::ffi::CString::new(crate::SCRIPT_NAME).expect("no NUL");
    let flags = (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32;
    // SAFETY: `source` is NUL-terminated; the compiled function is owned below.
    let function = unsafe {
        let raw = qjs::JS_Eval(ctx_ptr, source.as_ptr().cast(), source.len() as _, filename.as_ptr(), flags);
        Value::from_raw(ctx.clone(), raw)
    };
    if function.is_exception() {
        return Err(GuestError::from_js(ctx, rquickjs::Error::Exception));
    }
    let mut size = 0;
    // SAFETY: `function` is a live compiled script; the buffer is freed with `js_free`.
    unsafe {
        let bytes = qjs::JS_WriteObject(ctx_ptr, &mut size, function.as_raw(), qjs::JS_WRITE_OBJ_BYTECODE as i32);
        if bytes.is_null() {
            return Err(GuestError::from_js(ctx, rquickjs::Error::Exception));
        }
        out.extend_from_slice(std::slice::from_raw_parts(bytes, size as usize));
        qjs::js_free(ctx_ptr, bytes.cast());
    }
    run_and_check(ctx, function, kind)
}

/// Loads bytecode made by [`compile`] into this instance.
pub fn load(ctx: &Ctx<'_>, bytecode: &[u8], kind: PluginKind) -> Result<(), GuestError> {
    let ctx_ptr = ctx.as_raw().as_ptr();
    // SAFETY: reading bytes that `JS_WriteObject` of this same QuickJS produced.
    let function = unsafe {
        let raw = qjs::JS_ReadObject(ctx_ptr, bytecode.as_ptr(), bytecode.len() as _, qjs::JS_READ_OBJ_BYTECODE as i32);
        Value::from_raw(ctx.clone(), raw)
    };
    if function.is_exception() {
        return Err(GuestError::from_js(ctx, rquickjs::Error::Exception));
    }
    run_and_check(ctx, function, kind)
}

fn run_and_check<'js>(ctx: &Ctx<'js>, function: Value<'js>, kind: PluginKind) -> Result<(), GuestError> {
    let ctx_ptr = ctx.as_raw().as_ptr();
    // SAFETY: `JS_EvalFunction` takes ownership of one reference, which `JS_DupValue` creates.
    let result = unsafe {
        let raw = qjs::JS_EvalFunction(ctx_ptr, qjs::JS_DupValue(ctx_ptr, function.as_raw()));
        Value::from_raw(ctx.clone(), raw)
    };
    if result.is_exception() {
        return Err(GuestError::from_js(ctx, rquickjs::Error::Exception));
    }
    let mut functions = Vec::new();
    for name in PLUGIN_FUNCTIONS {
        if let Some(function) = resolve(ctx, name)? {
            functions.push((name, Persistent::save(ctx, function)));
        }
    }
    let missing: Vec<&str> = kind
        .required_functions()
        .iter()
        .copied()
        .filter(|name| !functions.iter().any(|(defined, _)| defined == name))
        .collect();
    FUNCTIONS.with_borrow_mut(|slot| *slot = functions);
    if missing.is_empty() {
        return Ok(());
    }
    Err(GuestError::new(
        ErrorKind::Script,
        format!(
            "a {} plugin must define {}; missing: {}",
            kind.as_str(),
            kind.required_functions().join(", "),
            missing.join(", ")
        ),
    ))
}

/// Every function name the plugin contract knows.
const PLUGIN_FUNCTIONS: [&str; 6] = ["main", "init", "step", "final", "inverse", "value"];

/// The function a global name is bound to, whether by `function`, `var`, `let` or `const`
/// (top-level `let`/`const` are not properties of the global object, so look them up by name).
fn resolve<'js>(ctx: &Ctx<'js>, name: &str) -> Result<Option<Function<'js>>, GuestError> {
    let lookup = format!("typeof {name} === 'function' ? {name} : undefined");
    let value: Value = ctx.eval(lookup).map_err(|e| GuestError::from_js(ctx, e))?;
    Ok(value.into_function())
}

/// Looks up a function of the loaded plugin.
fn function_named<'js>(ctx: &Ctx<'js>, name: &str) -> Result<Option<Function<'js>>, GuestError> {
    FUNCTIONS.with_borrow(|functions| {
        functions
            .iter()
            .find(|(defined, _)| *defined == name)
            .map(|(_, function)| function.clone().restore(ctx).map_err(|e| GuestError::from_js(ctx, e)))
            .transpose()
    })
}

/// Runs `op` over `rows` rows of `nargs` encoded arguments each, writing the response to `out`.
pub fn call<'js>(
    ctx: &Ctx<'js>,
    op: PluginOp,
    rows: u32,
    nargs: u32,
    mut args: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), GuestError> {
    let abi_error = |e: jsbox_abi::DecodeError| GuestError::new(ErrorKind::Abi, e.to_string());
    let js_error = |e: rquickjs::Error| GuestError::from_js(ctx, e);
    let function = |name: &str| -> Result<Function<'js>, GuestError> {
        function_named(ctx, name)?
            .ok_or_else(|| GuestError::new(ErrorKind::Script, format!("the plugin does not define {name}()")))
    };
    match op {
        PluginOp::Main => {
            let main = function("main")?;
            let (row, _) = decode_row(ctx, args, nargs).map_err(abi_error)?;
            let result: Value = main.call((rquickjs::function::Rest(row?),)).map_err(js_error)?;
            return values::encode_result(ctx, crate::settle(ctx, result)?, out);
        }
        PluginOp::Init => {
            let state: Value = function("init")?.call(()).map_err(js_error)?;
            set_state(ctx, state);
        }
        PluginOp::Step | PluginOp::Inverse => {
            let name = if op == PluginOp::Step { "step" } else { "inverse" };
            let update = function(name)?;
            for _ in 0..rows {
                let (row, rest) = decode_row(ctx, args, nargs).map_err(abi_error)?;
                args = rest;
                let mut call_args = vec![state(ctx)?];
                call_args.extend(row?);
                let state: Value = update.call((rquickjs::function::Rest(call_args),)).map_err(js_error)?;
                set_state(ctx, state);
            }
        }
        PluginOp::Final | PluginOp::Value => {
            let finish = match (op, function_named(ctx, "value")?) {
                (PluginOp::Value, Some(value)) => value,
                _ => function("final")?,
            };
            let result: Value = finish.call((state(ctx)?,)).map_err(js_error)?;
            return values::encode_result(ctx, crate::settle(ctx, result)?, out);
        }
    }
    jsbox_abi::Response::Null.encode_into(out);
    Ok(())
}

fn state<'js>(ctx: &Ctx<'js>) -> Result<Value<'js>, GuestError> {
    STATE.with_borrow(|state| match state {
        Some(state) => state.clone().restore(ctx).map_err(|e| GuestError::from_js(ctx, e)),
        None => Ok(Value::new_undefined(ctx.clone())),
    })
}

fn set_state<'js>(ctx: &Ctx<'js>, value: Value<'js>) {
    STATE.with_borrow_mut(|state| *state = Some(Persistent::save(ctx, value)));
}

/// Decodes one row of `nargs` arguments into JS values; returns the rest of the bytes.
#[allow(clippy::type_complexity)]
fn decode_row<'a, 'js>(
    ctx: &Ctx<'js>,
    mut bytes: &'a [u8],
    nargs: u32,
) -> Result<(Result<Vec<Value<'js>>, GuestError>, &'a [u8]), jsbox_abi::DecodeError> {
    let mut row = Vec::with_capacity(nargs as usize);
    for _ in 0..nargs {
        let (arg, rest) = Arg::decode(bytes)?;
        bytes = rest;
        match arg_to_js(ctx, arg) {
            Ok(value) => row.push(value),
            Err(e) => return Ok((Err(e), bytes)),
        }
    }
    Ok((Ok(row), bytes))
}

/// SQL argument → JS value: numbers, `null`, a `Uint8Array` for a BLOB, parsed JSON for TEXT
/// holding an object or array, a string for other TEXT.
fn arg_to_js<'js>(ctx: &Ctx<'js>, arg: Arg<'_>) -> Result<Value<'js>, GuestError> {
    let js_error = |e: rquickjs::Error| GuestError::from_js(ctx, e);
    let string = |s: &str| rquickjs::String::from_str(ctx.clone(), s).map(|s| s.into_value()).map_err(js_error);
    match arg {
        Arg::Null => Ok(Value::new_null(ctx.clone())),
        Arg::Integer(i) => integer_to_js(ctx, i),
        Arg::Real(f) => Ok(Value::new_number(ctx.clone(), f)),
        Arg::Text(s) => string(s),
        Arg::Blob(b) => TypedArray::<u8>::new_copy(ctx.clone(), b).map(|a| a.into_value()).map_err(js_error),
        Arg::Json(s) => match json::transcode(ctx, s.as_bytes()) {
            Ok(value) => Ok(value),
            Err(e) if e.kind == ErrorKind::InvalidInput => string(s),
            Err(e) => Err(e),
        },
    }
}
