//! Stored plugins inside the sandbox: compiling a plugin's source to QuickJS bytecode once,
//! loading that bytecode into an instance, and calling the plugin's functions with SQL arguments
//! while an aggregate's state stays here, in the instance, for the whole group.
//!
//! The plugin contract (`docs/functions.md`): a scalar defines `main(...args)`; an aggregate
//! `init()`, `step(state, ...args)` and `final(state)`; a window also `inverse(state, ...args)`
//! and, optionally, `value(state)`.

use std::cell::Cell;

use jsbox_abi::{Arg, ErrorKind, PluginFunction, PluginKind, PluginOp};
use rquickjs::{qjs, Ctx, Function, TypedArray, Value};

use crate::determinism;
use crate::error::GuestError;
use crate::json;
use crate::script::{self, Ran};
use crate::values::{self, integer_to_js};

thread_local! {
    /// The loaded plugin's functions, by [`PluginFunction::index`]: owned references, taken
    /// once at load and kept for the instance's lifetime, so that a call resolves nothing.
    static FUNCTIONS: Cell<[Option<qjs::JSValue>; PluginFunction::ALL.len()]> =
        const { Cell::new([None; PluginFunction::ALL.len()]) };
    /// The aggregate state of the group this instance serves (an owned reference).
    static STATE: Cell<qjs::JSValue> = const { Cell::new(qjs::JS_UNDEFINED) };
    /// The argument vector of [`RawCall`], kept between calls so that a row allocates nothing.
    static ARGS: Cell<Vec<qjs::JSValue>> = const { Cell::new(Vec::new()) };
}

/// Compiles `source`, runs it (so that its functions are defined), checks that it defines what
/// `kind` needs, and returns its bytecode for later instances. `source` must be followed by a
/// NUL byte in memory (the request buffer is).
pub fn compile(ctx: &Ctx<'_>, source: &[u8], kind: PluginKind, out: &mut Vec<u8>) -> Result<(), GuestError> {
    let function = script::compile(ctx, source, out)?;
    run_and_check(ctx, function, kind)
}

/// Loads bytecode made by [`compile`] into this instance.
pub fn load(ctx: &Ctx<'_>, bytecode: &[u8], kind: PluginKind) -> Result<(), GuestError> {
    let function = script::read(ctx, bytecode)?;
    run_and_check(ctx, function, kind)
}

fn run_and_check<'js>(ctx: &Ctx<'js>, function: Value<'js>, kind: PluginKind) -> Result<(), GuestError> {
    let ctx_ptr = ctx.as_raw().as_ptr();
    let ran = script::run(ctx, &function)?;
    let mut functions = [None; PluginFunction::ALL.len()];
    for (slot, function) in functions.iter_mut().zip(PluginFunction::ALL) {
        let found = match &ran {
            Ran::Script(_) => resolve(ctx, function.name())?,
            Ran::Module(namespace) => namespace.get::<_, Value>(function.name()).map_err(|e| GuestError::from_js(ctx, e))?.into_function(),
        };
        // SAFETY: an owned reference to a live function, kept until the instance is dropped.
        *slot = found.map(|function| unsafe { qjs::JS_DupValue(ctx_ptr, function.as_raw()) });
    }
    let names = |list: &mut dyn Iterator<Item = &PluginFunction>| list.map(|f| f.name()).collect::<Vec<_>>().join(", ");
    let missing = names(&mut kind.required_functions().iter().filter(|f| functions[f.index()].is_none()));
    FUNCTIONS.with(|slot| slot.set(functions));
    if missing.is_empty() {
        return Ok(());
    }
    Err(GuestError::new(
        ErrorKind::Script,
        format!(
            "{} {} plugin must define {}; missing: {}{}",
            if kind == PluginKind::Aggregate { "an" } else { "a" },
            kind.as_str(),
            names(&mut kind.required_functions().iter()),
            missing,
            if matches!(ran, Ran::Module(_)) { " (a plugin that imports is a module: export its functions)" } else { "" }
        ),
    ))
}

/// The function a global name is bound to, whether by `function`, `var`, `let` or `const`
/// (top-level `let`/`const` are not properties of the global object, so look them up by name).
fn resolve<'js>(ctx: &Ctx<'js>, name: &str) -> Result<Option<Function<'js>>, GuestError> {
    let lookup = format!("typeof {name} === 'function' ? {name} : undefined");
    let value: Value = ctx.eval(lookup).map_err(|e| GuestError::from_js(ctx, e))?;
    Ok(value.into_function())
}

/// The loaded plugin's `function` (a borrowed reference), if it defines one.
fn function(function: PluginFunction) -> Option<qjs::JSValue> {
    FUNCTIONS.with(|functions| functions.get()[function.index()])
}

fn required(function: PluginFunction) -> Result<qjs::JSValue, GuestError> {
    self::function(function).ok_or_else(|| GuestError::new(ErrorKind::Script, format!("the plugin does not define {}()", function.name())))
}

/// Runs `op` over `rows` rows of `nargs` encoded arguments each, writing the response to `out`.
///
/// `Step` and `Inverse` run their function once per row. `Final` and `Value` first run `step`
/// over the `rows` rows the host had still queued, so that a window's row costs one crossing.
/// `Main` takes one row.
///
/// Calls go through QuickJS's C API with raw values: this is the per-row path of every plugin,
/// and rquickjs's argument tuples cost more than the plugin's own work for small functions.
pub fn call<'js>(ctx: &Ctx<'js>, op: PluginOp, rows: u32, nargs: u32, mut args: &[u8], out: &mut Vec<u8>) -> Result<(), GuestError> {
    let mut call = RawCall::new(ctx);
    let per_row = match op {
        PluginOp::Main | PluginOp::Init => None,
        PluginOp::Inverse => Some(PluginFunction::Inverse),
        PluginOp::Step | PluginOp::Final | PluginOp::Value => Some(PluginFunction::Step),
    };
    if let (Some(name), true) = (per_row, rows > 0) {
        let update = required(name)?;
        for _ in 0..rows {
            call.push(state(ctx));
            let row = args;
            args = call.decode_row(args, nargs)?;
            determinism::reseed_for_row(&row[..row.len() - args.len()]);
            set_state(ctx, call.call(update)?);
        }
    }
    match op {
        PluginOp::Main => {
            let main = required(PluginFunction::Main)?;
            call.decode_row(args, nargs)?;
            determinism::reseed_for_row(args);
            let result = call.call(main)?;
            encode_raw(ctx, result, out)
        }
        PluginOp::Init => {
            set_state(ctx, call.call(required(PluginFunction::Init)?)?);
            jsbox_abi::Response::Null.encode_into(out);
            Ok(())
        }
        PluginOp::Step | PluginOp::Inverse => {
            jsbox_abi::Response::Null.encode_into(out);
            Ok(())
        }
        PluginOp::Final | PluginOp::Value => {
            let finish = match (op, function(PluginFunction::Value)) {
                (PluginOp::Value, Some(value)) => value,
                _ => required(PluginFunction::Final)?,
            };
            call.push(state(ctx));
            let result = call.call(finish)?;
            encode_raw(ctx, result, out)
        }
    }
}

/// `main` on numbers (`jsbox_plugin_main_numbers`; bit `i` of `integers` set: argument `i` is
/// an integer): returns the result if it is a number and no job is pending, else writes its
/// response into `out`.
pub fn main_numbers(ctx: &Ctx<'_>, args: &[f64], integers: u32, out: &mut Vec<u8>) -> Result<Option<f64>, GuestError> {
    if determinism::rows_seeded() {
        return Err(GuestError::new(ErrorKind::Abi, "number arguments in deterministic mode (rows are seeded from their encoding)"));
    }
    let main = required(PluginFunction::Main)?;
    let mut call = RawCall::new(ctx);
    for (i, &arg) in args.iter().enumerate() {
        call.push(if integers >> i & 1 == 1 { qjs::JS_MKVAL(qjs::JS_TAG_INT, arg as i32) } else { qjs::JS_NewFloat64(arg) });
    }
    let result = call.call(main)?;
    if !crate::jobs_pending(ctx) {
        if let Some(number) = values::number_of(result) {
            return Ok(Some(number));
        }
    }
    encode_settled(ctx, result, out).map(|()| None)
}

/// Encodes a function's result (an owned raw value): a number directly, anything else (after
/// settling promises) through [`values::encode_result`].
fn encode_raw(ctx: &Ctx<'_>, result: qjs::JSValue, out: &mut Vec<u8>) -> Result<(), GuestError> {
    if !crate::jobs_pending(ctx) && values::encode_number(result, out) {
        // Numbers hold no reference: nothing to free.
        return Ok(());
    }
    encode_settled(ctx, result, out)
}

/// Encodes a function's result (an owned raw value) after settling promises, through
/// [`values::encode_result`].
fn encode_settled(ctx: &Ctx<'_>, result: qjs::JSValue, out: &mut Vec<u8>) -> Result<(), GuestError> {
    // SAFETY: an owned reference of this context.
    let value = unsafe { Value::from_raw(ctx.clone(), result) };
    values::encode_result(ctx, crate::settle(ctx, value)?, out)
}

/// A new reference to the aggregate state.
fn state(ctx: &Ctx<'_>) -> qjs::JSValue {
    // SAFETY: STATE holds an owned reference (or undefined); duplicating it is always valid.
    STATE.with(|state| unsafe { qjs::JS_DupValue(ctx.as_raw().as_ptr(), state.get()) })
}

/// Replaces the aggregate state by `value`, an owned reference.
fn set_state(ctx: &Ctx<'_>, value: qjs::JSValue) {
    let old = STATE.with(|state| state.replace(value));
    // SAFETY: STATE owned that reference.
    unsafe { qjs::JS_FreeValue(ctx.as_raw().as_ptr(), old) };
}

/// Takes a value's reference out of its rquickjs wrapper.
fn into_raw<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> qjs::JSValue {
    let raw = value.as_raw();
    // SAFETY: one more reference for the caller, then the wrapper drops its own.
    unsafe { qjs::JS_DupValue(ctx.as_raw().as_ptr(), raw) };
    raw
}

/// The arguments of one function call as owned raw values; whatever is left is freed on drop,
/// so an error halfway through decoding a row leaks nothing.
struct RawCall<'a, 'js> {
    ctx: &'a Ctx<'js>,
    args: Vec<qjs::JSValue>,
}

impl<'a, 'js> RawCall<'a, 'js> {
    fn new(ctx: &'a Ctx<'js>) -> Self {
        RawCall { ctx, args: ARGS.take() }
    }

    /// Adds an owned value.
    fn push(&mut self, value: qjs::JSValue) {
        self.args.push(value);
    }

    /// Decodes one row of `nargs` arguments; returns the rest of the bytes.
    fn decode_row<'b>(&mut self, mut bytes: &'b [u8], nargs: u32) -> Result<&'b [u8], GuestError> {
        for _ in 0..nargs {
            let (arg, rest) = Arg::decode(bytes).map_err(|e| GuestError::new(ErrorKind::Abi, e.to_string()))?;
            bytes = rest;
            let value = arg_to_raw(self.ctx, arg)?;
            self.push(value);
        }
        Ok(bytes)
    }

    /// Calls `function` with the arguments gathered so far, which are consumed; returns the
    /// result as an owned raw value.
    fn call(&mut self, function: qjs::JSValue) -> Result<qjs::JSValue, GuestError> {
        let ctx_ptr = self.ctx.as_raw().as_ptr();
        // SAFETY: `function` is a live function of this context and `args` owned live values.
        let result = unsafe { qjs::JS_Call(ctx_ptr, function, qjs::JS_UNDEFINED, self.args.len() as i32, self.args.as_mut_ptr()) };
        self.free_args();
        // SAFETY: a tag check.
        if unsafe { qjs::JS_IsException(result) } {
            return Err(GuestError::from_js(self.ctx, rquickjs::Error::Exception));
        }
        Ok(result)
    }

    fn free_args(&mut self) {
        let ctx_ptr = self.ctx.as_raw().as_ptr();
        for value in self.args.drain(..) {
            // SAFETY: each argument is an owned reference.
            unsafe { qjs::JS_FreeValue(ctx_ptr, value) };
        }
    }
}

impl Drop for RawCall<'_, '_> {
    fn drop(&mut self) {
        self.free_args();
        ARGS.set(std::mem::take(&mut self.args));
    }
}

/// SQL argument → owned JS value: numbers (built in place; a BigInt beyond ±2^53), `null`, a
/// `Uint8Array` for a BLOB, the parsed value for TEXT holding an object or array (the string, if
/// it is not JSON after all), a string for other TEXT.
fn arg_to_raw<'js>(ctx: &Ctx<'js>, arg: Arg<'_>) -> Result<qjs::JSValue, GuestError> {
    let js_error = |e: rquickjs::Error| GuestError::from_js(ctx, e);
    let owned = |value: Value<'js>| into_raw(ctx, value);
    let string = |s: &str| rquickjs::String::from_str(ctx.clone(), s).map(|s| owned(s.into_value())).map_err(js_error);
    match arg {
        Arg::Null => Ok(qjs::JS_NULL),
        Arg::Real(f) => Ok(qjs::JS_NewFloat64(f)),
        Arg::Integer(i) => match i32::try_from(i) {
            Ok(small) => Ok(qjs::JS_MKVAL(qjs::JS_TAG_INT, small)),
            Err(_) => integer_to_js(ctx, i).map(owned),
        },
        Arg::Text(s) => string(s),
        Arg::Blob(b) => TypedArray::<u8>::new_copy(ctx.clone(), b).map(|a| owned(a.into_value())).map_err(js_error),
        // As for js_eval's input: where serde_json refuses a text (a number beyond f64's range,
        // a lone surrogate in an escape), QuickJS's parser decides, so that the language
        // accepted is `JSON.parse`'s; text that is JSON for neither stays a string.
        Arg::Json(s) => match json::transcode_raw(ctx, s) {
            Err(e) if e.kind == ErrorKind::InvalidInput => match values::parse_json_copy(ctx, s) {
                Ok(parsed) => Ok(owned(parsed)),
                Err(e) if e.kind == ErrorKind::InvalidInput => string(s),
                Err(e) => Err(e),
            },
            parsed => parsed,
        },
    }
}
