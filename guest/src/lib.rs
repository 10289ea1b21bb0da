//! The jsbox guest: QuickJS (via rquickjs) compiled to `wasm32-wasip1`.
//!
//! This crate knows nothing of SQLite. It owns one QuickJS runtime and context, created at build
//! time by Wizer (see [`init`]), and exposes the small ABI below to the host. Every call happens in
//! a fresh instance of the pre-initialized snapshot, so nothing a script does outlives its call.
//!
//! # ABI (version 3; documented in `docs/abi.md`)
//!
//! The exports are the `jsbox_*` functions below; their names are `jsbox_abi::export_names`,
//! which the host looks them up by, and it refuses a guest that exports other ones.
//!
//! For `jsbox_eval` the request buffer holds the script's bytecode followed by the input bytes,
//! whose meaning depends on `input_kind` ([`jsbox_abi::InputKind`]). The response is one tagged value
//! ([`jsbox_abi::Response`]).

mod console;
mod determinism;
mod error;
mod init;
mod json;
mod modules;
mod plugin;
mod script;
mod values;

use std::cell::RefCell;

use rquickjs::{Ctx, Value};

use error::GuestError;
use jsbox_abi::{self as abi, ErrorKind, InputKind, ModuleKind, PluginKind, PluginOp, Response};

thread_local! {
    /// Bytes the host writes the request into; reused across calls of one instance.
    static REQUEST: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The encoded response of the last call; the host reads it right after `jsbox_eval`.
    static RESPONSE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The name scripts see in error positions and stack traces.
const SCRIPT_NAME: &str = "script";

/// Returns a pointer to a buffer of `len` bytes for the next request. The buffer is followed by
/// a NUL byte, which lets QuickJS's JSON parser read the input in place (it needs a terminator).
/// It stays where it is until the next `jsbox_alloc`: the host writes later requests that fit
/// (each followed by its NUL) into it directly, without calling in.
#[no_mangle]
pub extern "C" fn jsbox_alloc(len: u32) -> *mut u8 {
    REQUEST.with_borrow_mut(|buf| {
        buf.clear();
        buf.resize(len as usize + 1, 0);
        buf.as_mut_ptr()
    })
}

/// Compiles the script in the request buffer (`len` bytes) without running it; responds with
/// its QuickJS bytecode as a BLOB, or the syntax error.
#[no_mangle]
pub extern "C" fn jsbox_script_compile(len: u32) -> u64 {
    respond(|ctx, request, out| {
        let mut bytecode = Vec::new();
        script::compile(ctx, &request[..len as usize], &mut bytecode)?;
        Response::Blob(&bytecode).encode_into(out);
        Ok(())
    })
}

/// Runs the compiled script in the request buffer (`code_len` bytes of bytecode from
/// `jsbox_script_compile`, then the input) with the global `data` bound to the input.
#[no_mangle]
pub extern "C" fn jsbox_eval(code_len: u32, input_kind: u32, input_len: u32, seed: u64) -> u64 {
    init::reseed_random(seed);
    respond(|ctx, request, out| {
        let (bytecode, input) = request.split_at(code_len as usize);
        eval(ctx, bytecode, input_kind, &input[..input_len as usize], out)
    })
}

/// Compiles the plugin source in the request buffer (`len` bytes), runs it and checks that it
/// defines the functions of `kind`; responds with its QuickJS bytecode as a BLOB.
#[no_mangle]
pub extern "C" fn jsbox_plugin_compile(len: u32, kind: u32) -> u64 {
    respond(|ctx, request, out| {
        let source = &request[..len as usize];
        if source.contains(&0) {
            return Err(GuestError::new(ErrorKind::Script, "plugin source contains a NUL character"));
        }
        let mut bytecode = Vec::new();
        plugin::compile(ctx, source, plugin_kind(kind)?, &mut bytecode)?;
        Response::Blob(&bytecode).encode_into(out);
        Ok(())
    })
}

/// Loads plugin bytecode (from `jsbox_plugin_compile`) from the request buffer into this
/// instance; `seed` seeds `Math.random` for the instance's lifetime.
#[no_mangle]
pub extern "C" fn jsbox_plugin_load(len: u32, kind: u32, seed: u64) -> u64 {
    init::reseed_random(seed);
    let response = respond(|ctx, request, out| {
        plugin::load(ctx, &request[..len as usize], plugin_kind(kind)?)?;
        Response::Null.encode_into(out);
        Ok(())
    });
    // (Outside the context's lock, which the collector takes.)
    init::settle_heap();
    response
}

/// Calls the loaded plugin: `op` over `rows` rows of `nargs` encoded arguments (`len` bytes in
/// the request buffer).
#[no_mangle]
pub extern "C" fn jsbox_plugin_call(op: u32, rows: u32, nargs: u32, len: u32) -> u64 {
    respond(|ctx, request, out| {
        let op = PluginOp::from_raw(op).ok_or_else(|| GuestError::new(ErrorKind::Abi, format!("unknown plugin op {op}")))?;
        plugin::call(ctx, op, rows, nargs, &request[..len as usize], out)
    })
}

/// Calls the loaded scalar plugin's `main` with `nargs` numbers (at most
/// [`abi::numbers::MAX_ARGS`]; bit `i` of `integers` set: argument `i` is an integer); returns
/// the result's bits if it is a number, else [`abi::numbers::SEE_RESPONSE`], the response (any
/// other value, an error, console output) then being in the response buffer
/// (`jsbox_response`).
#[no_mangle]
pub extern "C" fn jsbox_plugin_main_numbers(nargs: u32, integers: u32, a0: f64, a1: f64, a2: f64, a3: f64) -> u64 {
    let args = [a0, a1, a2, a3];
    let number = run_call(|ctx, _, out| {
        let args = args.get(..nargs as usize).ok_or_else(|| GuestError::new(ErrorKind::Abi, format!("{nargs} number arguments")))?;
        plugin::main_numbers(ctx, args, integers, out)
    });
    number.map_or(abi::numbers::SEE_RESPONSE, abi::numbers::bits_of)
}

/// The response of the last call, `ptr << 32 | len`.
#[no_mangle]
pub extern "C" fn jsbox_response() -> u64 {
    RESPONSE.with_borrow(|out| abi::pack_ptr_len(out.as_ptr() as u32, out.len() as u32))
}

/// Reseeds `Math.random` for this instance (one started from a loaded world's copy, which
/// holds the generator's state of the world it copies).
#[no_mangle]
pub extern "C" fn jsbox_reseed(seed: u64) {
    init::reseed_random(seed);
}

/// Sets deterministic mode for the coming call: a budget of `budget` interrupt polls (0: none),
/// and, if `seeded` is 1, `Math.random` reseeded for each row from `row_seed` and the row.
#[no_mangle]
pub extern "C" fn jsbox_determinism(budget: u64, row_seed: u64, seeded: u32) {
    determinism::set(budget, (seeded == 1).then_some(row_seed));
}

/// Compiles a stored module (the request buffer holds `len` bytes: one `named_bytes` entry, its
/// name and source) of `kind`; responds with its bytecode as a BLOB. Its imports must have been
/// added (`jsbox_modules_add`), or the error is `ModuleMissing`.
#[no_mangle]
pub extern "C" fn jsbox_module_compile(len: u32, kind: u32) -> u64 {
    respond(|ctx, request, out| {
        let kind = ModuleKind::from_raw(kind).ok_or_else(|| GuestError::new(ErrorKind::Abi, format!("unknown module kind {kind}")))?;
        let mut bytecode = Vec::new();
        modules::compile(ctx, &request[..len as usize], kind, &mut bytecode)?;
        Response::Blob(&bytecode).encode_into(out);
        Ok(())
    })
}

/// Adds modules (the request buffer holds `len` bytes of `named_bytes` entries: name, bytecode)
/// for this instance's imports.
#[no_mangle]
pub extern "C" fn jsbox_modules_add(len: u32) -> u64 {
    respond(|_, request, out| {
        modules::add(&request[..len as usize])?;
        Response::Null.encode_into(out);
        Ok(())
    })
}

fn plugin_kind(raw: u32) -> Result<PluginKind, GuestError> {
    PluginKind::from_raw(raw).ok_or_else(|| GuestError::new(ErrorKind::Abi, format!("unknown plugin kind {raw}")))
}

/// Runs `f` on the request buffer with the context, and publishes what it wrote (or its error)
/// as the response: `ptr << 32 | len`.
fn respond(f: impl FnOnce(&Ctx<'_>, &[u8], &mut Vec<u8>) -> Result<(), GuestError>) -> u64 {
    run_call(|ctx, request, out| f(ctx, request, out).map(|()| None));
    jsbox_response()
}

/// Runs one call: `f` with the context and the request buffer, writing its response into the
/// response buffer, or returning a number that stands for it ([`abi::numbers::response`]).
/// The number is returned only if the call wrote no console output (the response then says
/// that it did, and holds the number); an error becomes the response.
fn run_call(f: impl FnOnce(&Ctx<'_>, &[u8], &mut Vec<u8>) -> Result<Option<f64>, GuestError>) -> Option<f64> {
    console::clear();
    modules::clear_missing();
    REQUEST.with_borrow(|request| {
        RESPONSE.with_borrow_mut(|out| {
            out.clear();
            let number = match init::with_context(|ctx| f(&ctx, request, out)) {
                Ok(number) => number,
                Err(mut error) => {
                    if let Some(module) = modules::take_missing() {
                        error = GuestError::new(ErrorKind::ModuleMissing, module);
                    }
                    out.clear();
                    Response::Error(error.kind, &error.message).encode_into(out);
                    None
                }
            };
            if !console::with_output(|written| !written.is_empty()) {
                return number;
            }
            if let Some(number) = number {
                abi::numbers::response(number).encode_into(out);
            }
            abi::mark_console(out);
            None
        })
    })
}

/// Returns the console output captured during the last call.
#[no_mangle]
pub extern "C" fn jsbox_console() -> u64 {
    console::with_output(publish)
}

/// Returns a JSON description of this guest, for `js_version()` and `js_debug()`.
#[no_mangle]
pub extern "C" fn jsbox_info() -> u64 {
    publish(init::info_json().as_bytes())
}

/// Copies `bytes` into the response buffer and returns it as `ptr << 32 | len`.
fn publish(bytes: &[u8]) -> u64 {
    RESPONSE.with_borrow_mut(|buf| {
        buf.clear();
        buf.extend_from_slice(bytes);
        abi::pack_ptr_len(buf.as_ptr() as u32, buf.len() as u32)
    })
}

/// Binds `data`, runs the compiled script and encodes its value into `out`.
fn eval<'js>(ctx: &Ctx<'js>, bytecode: &[u8], input_kind: u32, input: &[u8], out: &mut Vec<u8>) -> Result<(), GuestError> {
    let kind =
        InputKind::from_raw(input_kind).ok_or_else(|| GuestError::new(ErrorKind::Abi, format!("unknown input kind {input_kind}")))?;
    let function = script::read(ctx, bytecode)?;
    let data = values::input_to_js(ctx, kind, input)?;
    ctx.globals().set("data", data).map_err(|e| GuestError::from_js(ctx, e))?;
    let value = match script::run(ctx, &function)? {
        script::Ran::Script(value) => settle(ctx, value)?,
        // A script that imports is a module: its value is its default export.
        script::Ran::Module(namespace) => namespace.get("default").map_err(|e| GuestError::from_js(ctx, e))?,
    };
    values::encode_result(ctx, value, out)
}

/// Runs the job queue (promise reactions) to completion, and replaces a promise by its outcome:
/// `(async () => 42)()` returns 42, a rejected promise is an error.
pub(crate) fn settle<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> Result<Value<'js>, GuestError> {
    while jobs_pending(ctx) && ctx.execute_pending_job() {}
    let Some(promise) = value.as_promise() else { return Ok(value) };
    match promise.result::<Value>() {
        Some(outcome) => outcome.map_err(|e| GuestError::from_js(ctx, e)),
        None => Err(GuestError::new(ErrorKind::UnsupportedResult, "the script returned a Promise that never settles")),
    }
}

/// Whether promise reactions are waiting to run.
pub(crate) fn jobs_pending(ctx: &Ctx<'_>) -> bool {
    // SAFETY: a query on the context's own runtime.
    unsafe { rquickjs::qjs::JS_IsJobPending(rquickjs::qjs::JS_GetRuntime(ctx.as_raw().as_ptr())) }
}

/// Makes the module a WASI reactor: wasm-ld then exports functions as they are, instead of
/// wrapping each one (as for a command) with libc's destructors, which flushed stdio after every
/// call. Wizer runs it once, before `wizer-initialize`, and drops it from the snapshot.
#[no_mangle]
pub extern "C" fn _initialize() {
    extern "C" {
        fn __wasm_call_ctors();
    }
    // SAFETY: the linker-generated constructor list, run once as a reactor's `_initialize` does.
    unsafe { __wasm_call_ctors() }
}
