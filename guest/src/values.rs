//! Converting values across the boundary: request inputs into JS values, and a script's result
//! into an encoded [`Response`], following the mapping in `docs/functions.md`:
//! integral numbers within ±2^53 → INTEGER, other numbers → REAL, booleans → 1/0, strings → TEXT,
//! null/undefined → NULL, objects and arrays → JSON text, ArrayBuffer and typed arrays → BLOB,
//! BigInt → INTEGER when it fits in 64 bits. Anything else is an error.

use jsbox_abi::{ErrorKind, Input, InputKind, Response};
use rquickjs::{qjs, ArrayBuffer, BigInt, Ctx, FromJs, Object, Type, Value};

use crate::error::GuestError;
use crate::json;

/// Builds the value a script sees as `data`.
pub fn input_to_js<'js>(ctx: &Ctx<'js>, kind: InputKind, input: &[u8]) -> Result<Value<'js>, GuestError> {
    let input = Input::decode(kind, input).map_err(|e| GuestError::new(ErrorKind::Abi, e.0))?;
    match input {
        Input::Null => Ok(Value::new_null(ctx.clone())),
        Input::Json(input) => parse_json_natively(ctx, input),
        // serde_json refuses a few texts JSON.parse accepts (numbers beyond f64's range, lone
        // surrogates in escapes): on a syntax error, QuickJS's parser decides, and serde_json's
        // message (with line and column) is kept if it refuses too.
        Input::JsonSerde(input) => match std::str::from_utf8(input) {
            Ok(text) => json::transcode(ctx, text).or_else(|error| match error.kind {
                ErrorKind::InvalidInput => parse_json_natively(ctx, input).map_err(|_| error),
                _ => Err(error),
            }),
            // The host sends UTF-8 only; should it not, QuickJS's parser says what is wrong.
            Err(_) => parse_json_natively(ctx, input),
        },
        Input::Real(f) => Ok(Value::new_number(ctx.clone(), f)),
        Input::Integer(i) => integer_to_js(ctx, i),
    }
}

/// A number when exact, a BigInt beyond ±2^53 (where a double would silently round).
pub fn integer_to_js<'js>(ctx: &Ctx<'js>, i: i64) -> Result<Value<'js>, GuestError> {
    if (i as f64).abs() < jsbox_abi::numbers::EXACT_INTEGER_LIMIT {
        Ok(Value::new_number(ctx.clone(), i as f64))
    } else {
        BigInt::from_i64(ctx.clone(), i).map(BigInt::into_value).map_err(|e| GuestError::from_js(ctx, e))
    }
}

/// `text` parsed by QuickJS's own JSON parser, from a NUL-terminated copy: what decides where
/// serde_json refuses a text that `JSON.parse` accepts, for text that is not followed by a NUL
/// in memory (a plugin's argument among others in the request buffer).
pub fn parse_json_copy<'js>(ctx: &Ctx<'js>, text: &str) -> Result<Value<'js>, GuestError> {
    let mut terminated = Vec::with_capacity(text.len() + 1);
    terminated.extend_from_slice(text.as_bytes());
    terminated.push(0);
    parse_json_natively(ctx, &terminated[..text.len()])
}

/// QuickJS's own JSON parser, reading the request buffer in place. `input` must be followed by
/// a NUL byte in memory (see `jsbox_alloc`).
fn parse_json_natively<'js>(ctx: &Ctx<'js>, input: &[u8]) -> Result<Value<'js>, GuestError> {
    if input.contains(&0) {
        return Err(GuestError::new(ErrorKind::InvalidInput, "JSON text contains a NUL character"));
    }
    // SAFETY: `input` is valid for `len` bytes and NUL-terminated; the result is an owned value
    // of this context (or the exception marker, handled below).
    let parsed = unsafe {
        let raw = qjs::JS_ParseJSON(ctx.as_raw().as_ptr(), input.as_ptr().cast(), input.len() as _, c"<input>".as_ptr());
        Value::from_raw(ctx.clone(), raw)
    };
    if !parsed.is_exception() {
        return Ok(parsed);
    }
    let error = GuestError::from_js(ctx, rquickjs::Error::Exception);
    Err(match error.kind {
        ErrorKind::Exception => {
            let message = error.message.strip_prefix("SyntaxError: ").unwrap_or(&error.message);
            GuestError::new(ErrorKind::InvalidInput, message)
        }
        _ => error,
    })
}

/// Encodes the script's value into `out` as a tagged response.
pub fn encode_result<'js>(ctx: &Ctx<'js>, value: Value<'js>, out: &mut Vec<u8>) -> Result<(), GuestError> {
    let unsupported = |what: &str| GuestError::new(ErrorKind::UnsupportedResult, format!("cannot return {what} as a SQL value"));
    match value.type_of() {
        Type::Uninitialized | Type::Undefined | Type::Null => Response::Null.encode_into(out),
        Type::Bool => Response::Integer(value.as_bool().unwrap_or(false) as i64).encode_into(out),
        Type::Int => Response::Integer(value.as_int().unwrap_or(0) as i64).encode_into(out),
        Type::Float => jsbox_abi::numbers::response(value.as_float().unwrap_or(f64::NAN)).encode_into(out),
        Type::String => Response::Text(&string_lossy(ctx, &value)?).encode_into(out),
        Type::BigInt => Response::Integer(bigint_to_i64(ctx, value)?).encode_into(out),
        Type::Symbol => return Err(unsupported("a symbol")),
        Type::Function | Type::Constructor => return Err(unsupported("a function")),
        // `settle` (lib.rs) has replaced a settled promise by its value already.
        Type::Promise => return Err(unsupported("a Promise")),
        Type::Module | Type::Unknown => return Err(unsupported("this value")),
        Type::Array | Type::Object | Type::Exception | Type::Proxy => {
            if let Some(bytes) = binary_bytes(ctx, &value) {
                Response::Blob(bytes).encode_into(out);
                return Ok(());
            }
            let json = ctx.json_stringify(value).map_err(|e| GuestError::from_js(ctx, e))?;
            match json {
                // `toJSON` may turn an object into `undefined`: that is SQL NULL, like undefined.
                None => Response::Null.encode_into(out),
                Some(json) => Response::Json(&string_lossy(ctx, json.as_value())?).encode_into(out),
            }
        }
    }
    Ok(())
}

/// Encodes `value` if it is a number (an integer or a double), without going through rquickjs:
/// the common result of a plugin's function. Returns whether it did.
pub fn encode_number(value: qjs::JSValue, out: &mut Vec<u8>) -> bool {
    number_of(value).map(|number| jsbox_abi::numbers::response(number).encode_into(out)).is_some()
}

/// `value`'s number, if it is one (an integer or a double).
pub fn number_of(value: qjs::JSValue) -> Option<f64> {
    // SAFETY: tag checks and reads of an immediate value.
    unsafe {
        match qjs::JS_VALUE_GET_NORM_TAG(value) {
            qjs::JS_TAG_INT => Some(f64::from(qjs::JS_VALUE_GET_INT(value))),
            qjs::JS_TAG_FLOAT64 => Some(qjs::JS_VALUE_GET_FLOAT64(value)),
            _ => None,
        }
    }
}

/// A JS string as UTF-8. Lone surrogates, which UTF-8 cannot hold, become U+FFFD.
pub fn string_lossy<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> Result<String, GuestError> {
    let mut len = 0;
    // SAFETY: the value is a live string of this context; the C string is freed below.
    let ptr = unsafe { qjs::JS_ToCStringLen2(ctx.as_raw().as_ptr(), &mut len, value.as_raw(), false) };
    if ptr.is_null() {
        return Err(GuestError::from_js(ctx, rquickjs::Error::Exception));
    }
    // SAFETY: QuickJS returned `len` readable bytes at `ptr`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len as usize) };
    let text = wtf8_to_utf8_lossy(bytes);
    // SAFETY: the C string QuickJS gave above, freed once, by the context that made it, after
    // its last use (`bytes` is not used past this point).
    unsafe { qjs::JS_FreeCString(ctx.as_raw().as_ptr(), ptr) };
    Ok(text)
}

/// QuickJS encodes a lone surrogate as its own three bytes (`ED A0..BF xx`, "WTF-8"); replace
/// each such sequence by one U+FFFD rather than three.
fn wtf8_to_utf8_lossy(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(rest) => {
                out.push_str(rest);
                return out;
            }
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                // SAFETY: `from_utf8` vouched for these bytes.
                out.push_str(unsafe { std::str::from_utf8_unchecked(valid) });
                out.push(char::REPLACEMENT_CHARACTER);
                let surrogate = rest.len() >= 3 && rest[0] == 0xED && (0xA0..=0xBF).contains(&rest[1]);
                let skip = if surrogate { 3 } else { e.error_len().unwrap_or(rest.len()) };
                bytes = &rest[skip..];
            }
        }
    }
}

fn bigint_to_i64<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> Result<i64, GuestError> {
    // QuickJS's BigInt-to-int64 conversion wraps modulo 2^64; go through the decimal digits to
    // refuse, rather than corrupt, values outside the INTEGER range.
    let digits = rquickjs::convert::Coerced::<String>::from_js(ctx, value).map_err(|e| GuestError::from_js(ctx, e))?;
    digits
        .0
        .parse()
        .map_err(|_| GuestError::new(ErrorKind::UnsupportedResult, format!("BigInt {} does not fit in a 64-bit INTEGER", digits.0)))
}

/// The bytes of an ArrayBuffer, or of the window a typed array or DataView has on its buffer.
fn binary_bytes<'a, 'js>(ctx: &Ctx<'js>, value: &'a Value<'js>) -> Option<&'a [u8]> {
    if let Some(buffer) = value.as_object().and_then(|o| ArrayBuffer::from_object(o.clone())) {
        let raw = buffer.as_raw()?;
        // SAFETY: the buffer is owned by `value`, which outlives the returned slice, and no JS
        // runs before the slice is copied out.
        return Some(unsafe { raw.as_ref() });
    }
    if let Some(bytes) = data_view_bytes(ctx, value) {
        return Some(bytes);
    }
    // SAFETY: plain queries on a live value of this context.
    unsafe {
        if qjs::JS_GetTypedArrayType(value.as_raw()) < 0 {
            return None;
        }
        let ctx_ptr = ctx.as_raw().as_ptr();
        let (mut offset, mut length, mut element) = (0, 0, 0);
        let buffer = qjs::JS_GetTypedArrayBuffer(ctx_ptr, value.as_raw(), &mut offset, &mut length, &mut element);
        let mut size = 0;
        let data = qjs::JS_GetArrayBuffer(ctx_ptr, &mut size, buffer);
        // The typed array holds a reference to the buffer, so the bytes stay alive with `value`.
        qjs::JS_FreeValue(ctx_ptr, buffer);
        let (offset, length, size) = (offset as usize, length as usize, size as usize);
        if data.is_null() || offset + length > size {
            let _ = ctx.catch(); // a detached buffer: no bytes
            return Some(&[]);
        }
        Some(std::slice::from_raw_parts(data.add(offset), length))
    }
}

/// The window a DataView has on its buffer (QuickJS's C API has no accessor for DataViews).
fn data_view_bytes<'a, 'js>(ctx: &Ctx<'js>, value: &'a Value<'js>) -> Option<&'a [u8]> {
    let object = value.as_object()?;
    let data_view: Value = ctx.globals().get("DataView").ok()?;
    if !object.is_instance_of(&data_view) {
        return None;
    }
    let buffer: Object = object.get("buffer").ok()?;
    let offset: usize = object.get("byteOffset").ok()?;
    let length: usize = object.get("byteLength").ok()?;
    let raw = ArrayBuffer::from_object(buffer)?.as_raw()?;
    // SAFETY: the DataView keeps its buffer alive as long as `value` lives, and no JS runs
    // before the slice is copied out.
    let all = unsafe { raw.as_ref() };
    Some(all.get(offset..offset + length).unwrap_or(&[]))
}

#[cfg(test)]
mod tests {
    use super::wtf8_to_utf8_lossy;

    #[test]
    fn lone_surrogates_become_one_replacement_character() {
        assert_eq!(wtf8_to_utf8_lossy(b"a\xED\xA0\x80b"), "a\u{FFFD}b");
        assert_eq!(wtf8_to_utf8_lossy(b"\xED\xB0\x80"), "\u{FFFD}");
        assert_eq!(wtf8_to_utf8_lossy("h\u{e9}\u{2603}".as_bytes()), "h\u{e9}\u{2603}");
        assert_eq!(wtf8_to_utf8_lossy(b"x\xFFy"), "x\u{FFFD}y");
        assert_eq!(wtf8_to_utf8_lossy(b"trunc\xE2\x98"), "trunc\u{FFFD}");
    }
}
