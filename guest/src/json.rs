//! JSON text → QuickJS values with serde_json, without an intermediate tree: the deserializer
//! drives a visitor that allocates the JS objects directly. This is `js_eval`'s JSON input path
//! ([`jsbox_abi::InputKind::JsonSerde`]): measured ~25 % faster than QuickJS's own `JSON.parse`
//! on the seed fixture (`docs/abi.md`, `make bench`).

use std::fmt;

use jsbox_abi::ErrorKind;
use rquickjs::{qjs, Array, Ctx, Object, Value};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::error::GuestError;
use crate::values::integer_to_js;

/// Parses `input` as JSON into a JS value.
pub fn transcode<'js>(ctx: &Ctx<'js>, input: &[u8]) -> Result<Value<'js>, GuestError> {
    let mut deserializer = serde_json::Deserializer::from_slice(input);
    // Nesting is bounded by the sandbox's stack instead (a trap the host reports as a stack
    // overflow), as it is for QuickJS's own parser.
    deserializer.disable_recursion_limit();
    JS_FAILED.set(false);
    JsSeed(ctx)
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|e| {
            if JS_FAILED.get() {
                GuestError::new(ErrorKind::OutOfMemory, "out of memory")
            } else {
                GuestError::new(ErrorKind::InvalidInput, e.to_string())
            }
        })
}

thread_local! {
    /// Set when building a JS value failed (QuickJS out of memory), as opposed to bad JSON.
    static JS_FAILED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

struct JsSeed<'a, 'js>(&'a Ctx<'js>);

impl<'de, 'js> DeserializeSeed<'de> for JsSeed<'_, 'js> {
    type Value = Value<'js>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Maps an rquickjs failure (allocation, pending exception) into the deserializer's error type.
fn js_failure<E: serde::de::Error>(_: rquickjs::Error) -> E {
    JS_FAILED.set(true);
    E::custom("out of memory while building the input value")
}

impl<'de, 'js> Visitor<'de> for JsSeed<'_, 'js> {
    type Value = Value<'js>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Value::new_null(self.0.clone()))
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Value::new_bool(self.0.clone(), b))
    }

    fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<Self::Value, E> {
        integer_to_js(self.0, i).map_err(|e| E::custom(e.message))
    }

    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<Self::Value, E> {
        match i64::try_from(u) {
            Ok(i) => self.visit_i64(i),
            Err(_) => Ok(Value::new_number(self.0.clone(), u as f64)),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Self::Value, E> {
        Ok(Value::new_number(self.0.clone(), f))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
        rquickjs::String::from_str(self.0.clone(), s).map(|s| s.into_value()).map_err(js_failure)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let array = Array::new(self.0.clone()).map_err(js_failure)?;
        let mut index = 0;
        while let Some(element) = seq.next_element_seed(JsSeed(self.0))? {
            array.set(index, element).map_err(js_failure)?;
            index += 1;
        }
        Ok(array.into_value())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let object = Object::new(self.0.clone()).map_err(js_failure)?;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value_seed(JsSeed(self.0))?;
            define(self.0, &object, &key, value).map_err(js_failure)?;
        }
        Ok(object.into_value())
    }
}

/// Defines `object[key] = value` as an own data property, as `JSON.parse` does: a `"__proto__"`
/// key becomes a property, never the object's prototype.
fn define<'js>(ctx: &Ctx<'js>, object: &Object<'js>, key: &str, value: Value<'js>) -> rquickjs::Result<()> {
    let ctx_ptr = ctx.as_raw().as_ptr();
    // SAFETY: `ctx_ptr` is this live context; the atom is freed below; `JS_DefinePropertyValue`
    // takes ownership of one reference to the value, which `JS_DupValue` creates (the `Value`
    // drops its own).
    let status = unsafe {
        let atom = qjs::JS_NewAtomLen(ctx_ptr, key.as_ptr().cast(), key.len() as _);
        let status = qjs::JS_DefinePropertyValue(
            ctx_ptr,
            object.as_value().as_raw(),
            atom,
            qjs::JS_DupValue(ctx_ptr, value.as_raw()),
            qjs::JS_PROP_C_W_E as _,
        );
        qjs::JS_FreeAtom(ctx_ptr, atom);
        status
    };
    if status < 0 {
        Err(rquickjs::Error::Exception)
    } else {
        Ok(())
    }
}

/// Object keys, borrowed from the input when they hold no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeySeed)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(s))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(s.to_owned()))
    }
}
