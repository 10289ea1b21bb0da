//! Scripts as QuickJS bytecode: compiling source once (`js_eval`'s scripts and plugins alike),
//! reading the bytecode into another instance, and running it. The host caches the bytecode, so
//! a script that runs again does not pay QuickJS's parser and compiler again (for a short script
//! on a small input, most of a call's time).

use rquickjs::{qjs, Ctx, Value};

use crate::error::GuestError;

/// Compiles `source` as a global script (not run) and appends its bytecode to `out`; returns the
/// compiled function. `source` must be followed by a NUL byte in memory (the request buffer is).
pub fn compile<'js>(ctx: &Ctx<'js>, source: &[u8], out: &mut Vec<u8>) -> Result<Value<'js>, GuestError> {
    // QuickJS's C API cannot take a NUL inside the source: refuse rather than run a prefix.
    if source.contains(&0) {
        return Err(GuestError::new(jsbox_abi::ErrorKind::Script, "script contains a NUL character"));
    }
    let ctx_ptr = ctx.as_raw().as_ptr();
    let filename = std::ffi::CString::new(crate::SCRIPT_NAME).expect("no NUL");
    let flags = (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32;
    // SAFETY: `source` is NUL-terminated; the compiled function is owned by the returned value.
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
    Ok(function)
}

/// Runs a compiled script; returns its completion value (a script's last expression).
pub fn run<'js>(ctx: &Ctx<'js>, function: &Value<'js>) -> Result<Value<'js>, GuestError> {
    let ctx_ptr = ctx.as_raw().as_ptr();
    // SAFETY: `JS_EvalFunction` takes ownership of one reference, which `JS_DupValue` creates.
    let result = unsafe {
        let raw = qjs::JS_EvalFunction(ctx_ptr, qjs::JS_DupValue(ctx_ptr, function.as_raw()));
        Value::from_raw(ctx.clone(), raw)
    };
    if result.is_exception() {
        return Err(GuestError::from_js(ctx, rquickjs::Error::Exception));
    }
    Ok(result)
}
