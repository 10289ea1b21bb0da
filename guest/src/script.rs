//! Scripts as QuickJS bytecode: compiling source once (`js_eval`'s scripts and plugins alike),
//! reading the bytecode into another instance, and running it. The host caches the bytecode, so
//! a script that runs again does not pay QuickJS's parser and compiler again (for a short script
//! on a small input, most of a call's time).
//!
//! A script that uses `import` or `export` is an ES module (QuickJS's `JS_DetectModule`): its
//! imports come from the instance's module table (`modules`), and running it gives its
//! namespace ([`Ran::Module`]) rather than a completion value.

use rquickjs::{qjs, Ctx, Object, Value};

use crate::error::GuestError;

/// Compiles `source` as a global script (not run) and appends its bytecode to `out`; returns the
/// compiled function. `source` must be followed by a NUL byte in memory (the request buffer is).
pub fn compile<'js>(ctx: &Ctx<'js>, source: &[u8], out: &mut Vec<u8>) -> Result<Value<'js>, GuestError> {
    // QuickJS's C API cannot take a NUL inside the source: refuse rather than run a prefix.
    if source.contains(&0) {
        return Err(GuestError::new(jsbox_abi::ErrorKind::Script, "script contains a NUL character"));
    }
    let ctx_ptr = ctx.as_raw().as_ptr();
    // A script, unless it only compiles as a module (it has `import` or `export` statements).
    let function = match compile_as(ctx, source, qjs::JS_EVAL_TYPE_GLOBAL) {
        Ok(function) => function,
        Err(script_error) => match compile_as(ctx, source, qjs::JS_EVAL_TYPE_MODULE) {
            Ok(module) => module,
            // A module whose import is not given yet: the host fetches it and tries again.
            Err(module_error) if crate::modules::has_missing() => return Err(module_error),
            // It parsed as a module (its imports failed), or fails as a script at import/export.
            Err(module_error)
                if !module_error.message.starts_with("SyntaxError")
                    || script_error.message.contains("import")
                    || script_error.message.contains("export") =>
            {
                return Err(module_error)
            }
            Err(_) => return Err(script_error),
        },
    };
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
    Ok(function)
}

/// Compiles NUL-terminated `source` as a script or module (`kind`), without running it.
fn compile_as<'js>(ctx: &Ctx<'js>, source: &[u8], kind: u32) -> Result<Value<'js>, GuestError> {
    let filename = std::ffi::CString::new(crate::SCRIPT_NAME).expect("no NUL");
    let flags = (kind | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32;
    // SAFETY: `source` is NUL-terminated; the compiled function is owned by the returned value.
    let function = unsafe {
        let raw = qjs::JS_Eval(ctx.as_raw().as_ptr(), source.as_ptr().cast(), source.len() as _, filename.as_ptr(), flags);
        Value::from_raw(ctx.clone(), raw)
    };
    if function.is_exception() {
        return Err(GuestError::from_js(ctx, rquickjs::Error::Exception));
    }
    Ok(function)
}

/// Reads bytecode made by [`compile`] (in this or another instance of the guest).
pub fn read<'js>(ctx: &Ctx<'js>, bytecode: &[u8]) -> Result<Value<'js>, GuestError> {
    // SAFETY: the bytes come from `JS_WriteObject` of this same QuickJS, through the host.
    let function = unsafe {
        let raw = qjs::JS_ReadObject(ctx.as_raw().as_ptr(), bytecode.as_ptr(), bytecode.len() as _, qjs::JS_READ_OBJ_BYTECODE as i32);
        Value::from_raw(ctx.clone(), raw)
    };
    if function.is_exception() {
        return Err(GuestError::from_js(ctx, rquickjs::Error::Exception));
    }
    // A module's imports are loaded (from the module table) before it can run.
    // SAFETY: a tag check, then resolution of a live module value.
    if is_module(&function) && unsafe { qjs::JS_ResolveModule(ctx.as_raw().as_ptr(), function.as_raw()) } < 0 {
        return Err(GuestError::from_js(ctx, rquickjs::Error::Exception));
    }
    Ok(function)
}

fn is_module(value: &Value<'_>) -> bool {
    // SAFETY: reads the tag of a live value.
    unsafe { qjs::JS_VALUE_GET_TAG(value.as_raw()) == qjs::JS_TAG_MODULE }
}

/// What running a compiled script gave.
pub enum Ran<'js> {
    /// A global script's completion value (its last expression statement).
    Script(Value<'js>),
    /// A module's namespace, once its evaluation (and any top-level `await`) settled.
    Module(Object<'js>),
}

/// Runs a compiled script or module.
pub fn run<'js>(ctx: &Ctx<'js>, function: &Value<'js>) -> Result<Ran<'js>, GuestError> {
    let ctx_ptr = ctx.as_raw().as_ptr();
    // SAFETY: `JS_EvalFunction` takes ownership of one reference, which `JS_DupValue` creates.
    let result = unsafe {
        let raw = qjs::JS_EvalFunction(ctx_ptr, qjs::JS_DupValue(ctx_ptr, function.as_raw()));
        Value::from_raw(ctx.clone(), raw)
    };
    if result.is_exception() {
        return Err(GuestError::from_js(ctx, rquickjs::Error::Exception));
    }
    if !is_module(function) {
        return Ok(Ran::Script(result));
    }
    // Evaluating a module gives a promise of its completion.
    crate::settle(ctx, result)?;
    // SAFETY: a module value holds its module definition, which the context keeps loaded.
    let namespace = unsafe {
        let module = qjs::JS_VALUE_GET_PTR(function.as_raw()).cast::<qjs::JSModuleDef>();
        Value::from_raw(ctx.clone(), qjs::JS_GetModuleNamespace(ctx_ptr, module))
    };
    if namespace.is_exception() {
        return Err(GuestError::from_js(ctx, rquickjs::Error::Exception));
    }
    Ok(Ran::Module(namespace.into_object().expect("a module namespace is an object")))
}

/// Compiles and runs `source` as a sloppy-mode global script named `filename`; returns its
/// completion value.
pub fn eval_global<'js>(ctx: &Ctx<'js>, source: &str, filename: &str) -> Result<Value<'js>, GuestError> {
    let source =
        std::ffi::CString::new(source).map_err(|_| GuestError::new(jsbox_abi::ErrorKind::Script, "source contains a NUL character"))?;
    let filename =
        std::ffi::CString::new(filename).map_err(|_| GuestError::new(jsbox_abi::ErrorKind::Script, "name contains a NUL character"))?;
    let ctx_ptr = ctx.as_raw().as_ptr();
    // SAFETY: both strings are NUL-terminated; the result is an owned value.
    let value = unsafe {
        let raw = qjs::JS_Eval(ctx_ptr, source.as_ptr(), source.as_bytes().len() as _, filename.as_ptr(), qjs::JS_EVAL_TYPE_GLOBAL as i32);
        Value::from_raw(ctx.clone(), raw)
    };
    if value.is_exception() {
        return Err(GuestError::from_js(ctx, rquickjs::Error::Exception));
    }
    Ok(value)
}
