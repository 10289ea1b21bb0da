//! JSON text → QuickJS values with serde_json, without an intermediate tree: the deserializer
//! drives a visitor that allocates the JS objects directly. One of the two input paths
//! ([`jsbox_abi::InputKind::JsonSerde`]); `docs/abi.md` records how it compares with QuickJS's own
//! parser.

use std::fmt;

use jsbox_abi::ErrorKind;
use rquickjs::{Array, Ctx, Object, Value};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::error::GuestError;
use crate::values::integer_to_js;

/// Parses `input` as JSON into a JS value.
pub fn transcode<'js>(ctx: &Ctx<'js>, input: &[u8]) -> Result<Value<'js>, GuestError> {
    let mut deserializer = serde_json::Deserializer::from_slice(input);
    let value = JsSeed(ctx)
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|e| GuestError::new(ErrorKind::InvalidInput, e.to_string()))?;
    Ok(value)
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
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let value = map.next_value_seed(JsSeed(self.0))?;
            object.set(&*key, value).map_err(js_failure)?;
        }
        Ok(object.into_value())
    }
}
