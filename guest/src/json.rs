//! JSON text → QuickJS values with serde_json, without an intermediate tree: the deserializer
//! drives a visitor that allocates the JS values directly. This is `js_eval`'s JSON input path
//! ([`jsbox_abi::InputKind::JsonSerde`]) and how plugins receive TEXT holding an object or an
//! array: measured faster than QuickJS's own `JSON.parse` (`docs/performance.md`).
//!
//! Values are built through QuickJS's C API, as raw owned references: arrays in one piece from
//! a shared stack of elements (`JS_NewArrayFrom`), and object keys through a per-instance cache
//! of atoms, so that the same keys row after row (GeoJSON's `type`, `geometry`, ...) are neither
//! looked up in QuickJS's atom table nor freed and re-created each time.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;

use jsbox_abi::fnv::FnvBuildHasher;
use jsbox_abi::ErrorKind;
use rquickjs::{qjs, Ctx, Value};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::error::GuestError;

/// Keys the atom cache holds at most, and the longest key it holds: enough for the keys of any
/// regular data; beyond that, keys are interned on each use (QuickJS looks them up itself).
const MAX_CACHED_KEYS: usize = 4096;
const MAX_CACHED_KEY_BYTES: usize = 64;

thread_local! {
    /// Set when building a JS value failed (QuickJS out of memory), as opposed to bad JSON.
    static JS_FAILED: Cell<bool> = const { Cell::new(false) };
    /// Elements of the arrays being built, innermost last.
    static ELEMENTS: RefCell<Vec<qjs::JSValue>> = const { RefCell::new(Vec::new()) };
    /// Object keys seen before, with the atom that holds a reference for the cache.
    static KEY_ATOMS: RefCell<HashMap<Box<str>, qjs::JSAtom, FnvBuildHasher>> = RefCell::new(HashMap::default());
    /// The key sequences of objects built before: see [`Shapes`].
    static SHAPES: RefCell<Shapes> = RefCell::new(Shapes::default());
}

/// Key sequences (object shapes) the instance keeps alive, at most, and the most keys of one
/// that it follows (an anchor of n keys costs n definitions: a longer object, which the keeping
/// would make quadratic, is built as QuickJS builds it anyway). The anchors and their shapes
/// count in the world's memory: at most about 0.6 MiB (512 shapes of 32 keys), usually a few KiB
/// (GeoJSON rows have about 15 prefixes).
const MAX_KEPT_SHAPES: usize = 512;
const MAX_KEPT_SHAPE_KEYS: usize = 32;

/// Keeps the shape of every prefix of the key sequences seen (`{}`, `{type}`, `{type,
/// properties}`, ...) alive, each held by an anchor: an empty-valued object of that shape that no
/// script can reach. QuickJS shares the shapes it can find in its shape table: an object that adds
/// a key to a shape another object holds moves to the existing next shape instead of making one.
/// Without anchors, the shapes of a row's objects die with them, and the next row's identical
/// objects each allocate and grow a shape of their own, key by key.
#[derive(Default)]
struct Shapes {
    /// (prefix, key) → the longer prefix: indices into `anchors`, 0 being `{}`.
    next: HashMap<(u32, qjs::JSAtom), u32, FnvBuildHasher>,
    /// Each prefix's anchor, its parent prefix and last key.
    anchors: Vec<(qjs::JSValue, u32, qjs::JSAtom)>,
}

impl Shapes {
    /// Makes sure the shape `prefix` + `key` is alive; returns it, or `None` where the kept
    /// shapes are full or the anchor could not be made (out of memory: the object is then
    /// built without).
    fn extend(&mut self, ctx: *mut qjs::JSContext, prefix: u32, key: qjs::JSAtom) -> Option<u32> {
        if let Some(&next) = self.next.get(&(prefix, key)) {
            return Some(next);
        }
        if self.anchors.len() >= MAX_KEPT_SHAPES {
            return None;
        }
        if self.anchors.is_empty() {
            // SAFETY: a new object of this context, owned by the anchor list.
            let root = unsafe { qjs::JS_NewObject(ctx) };
            // SAFETY: a tag check.
            if unsafe { qjs::JS_IsException(root) } {
                return None;
            }
            self.anchors.push((root, 0, qjs::JS_ATOM_NULL as qjs::JSAtom));
        }
        let mut keys = vec![key];
        let mut at = prefix;
        while at != 0 {
            let (_, parent, key) = self.anchors[at as usize];
            keys.push(key);
            at = parent;
        }
        // SAFETY: a new object of this context; its keys are atoms the key cache holds (only
        // cached atoms are followed), each defined with an undefined value as the JSON builder
        // defines them (`JS_PROP_C_W_E`). On failure the object is freed.
        unsafe {
            let anchor = qjs::JS_NewObject(ctx);
            if qjs::JS_IsException(anchor) {
                return None;
            }
            for &key in keys.iter().rev() {
                if qjs::JS_DefinePropertyValue(ctx, anchor, key, qjs::JS_UNDEFINED, qjs::JS_PROP_C_W_E as _) < 0 {
                    qjs::JS_FreeValue(ctx, anchor);
                    return None;
                }
            }
            self.anchors.push((anchor, prefix, key));
        }
        let next = (self.anchors.len() - 1) as u32;
        self.next.insert((prefix, key), next);
        Some(next)
    }
}

/// Parses `input` as JSON into a JS value.
pub fn transcode<'js>(ctx: &Ctx<'js>, input: &str) -> Result<Value<'js>, GuestError> {
    let raw = transcode_raw(ctx, input)?;
    // SAFETY: an owned reference of this context.
    Ok(unsafe { Value::from_raw(ctx.clone(), raw) })
}

/// Parses `input` as JSON into an owned raw JS value.
pub fn transcode_raw(ctx: &Ctx<'_>, input: &str) -> Result<qjs::JSValue, GuestError> {
    let mut deserializer = serde_json::Deserializer::from_str(input);
    // Nesting is bounded by the sandbox's stack instead (a trap the host reports as a stack
    // overflow), as it is for QuickJS's own parser.
    deserializer.disable_recursion_limit();
    JS_FAILED.set(false);
    let builder = Builder(ctx.as_raw().as_ptr());
    builder.deserialize(&mut deserializer).and_then(|value| deserializer.end().map(|()| value.into_raw())).map_err(|e| {
        if JS_FAILED.get() {
            GuestError::new(ErrorKind::OutOfMemory, "out of memory")
        } else {
            GuestError::new(ErrorKind::InvalidInput, e.to_string())
        }
    })
}

/// Builds JS values in a context.
#[derive(Clone, Copy)]
struct Builder(*mut qjs::JSContext);

/// An owned JS value being built; freed if dropped, which is how a syntax error halfway through
/// releases what was built so far.
struct Owned {
    ctx: *mut qjs::JSContext,
    value: qjs::JSValue,
}

impl Owned {
    fn into_raw(self) -> qjs::JSValue {
        let value = self.value;
        std::mem::forget(self);
        value
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: `value` is an owned reference of `ctx`.
        unsafe { qjs::JS_FreeValue(self.ctx, self.value) };
    }
}

impl Builder {
    fn own(self, value: qjs::JSValue) -> Owned {
        Owned { ctx: self.0, value }
    }

    /// Takes a fresh value from QuickJS, which signals failure (out of memory) with an
    /// exception.
    fn checked<E: serde::de::Error>(self, value: qjs::JSValue) -> Result<Owned, E> {
        // SAFETY: a tag check.
        if unsafe { qjs::JS_IsException(value) } {
            return Err(js_failure());
        }
        Ok(self.own(value))
    }

    /// The atom of an object key: from the cache (a borrowed reference), or interned now and
    /// then either cached or returned as owned (`true`: the caller frees it).
    fn key_atom(self, key: &str) -> (qjs::JSAtom, bool) {
        if let Some(atom) = KEY_ATOMS.with_borrow(|atoms| atoms.get(key).copied()) {
            return (atom, false);
        }
        // SAFETY: `key` is valid for its length; the atom is owned by the caller or the cache.
        let atom = unsafe { qjs::JS_NewAtomLen(self.0, key.as_ptr().cast(), key.len() as _) };
        if atom == qjs::JS_ATOM_NULL as qjs::JSAtom || key.len() > MAX_CACHED_KEY_BYTES {
            return (atom, true);
        }
        KEY_ATOMS.with_borrow_mut(|atoms| {
            if atoms.len() < MAX_CACHED_KEYS {
                atoms.insert(key.into(), atom);
                (atom, false)
            } else {
                (atom, true)
            }
        })
    }
}

/// Records that QuickJS (not the JSON) failed, and makes the deserializer's error.
fn js_failure<E: serde::de::Error>() -> E {
    JS_FAILED.set(true);
    E::custom("out of memory while building the input value")
}

impl<'de> DeserializeSeed<'de> for Builder {
    type Value = Owned;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Builder {
    type Value = Owned;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.own(qjs::JS_NULL))
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(self.own(if b { qjs::JS_TRUE } else { qjs::JS_FALSE }))
    }

    fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<Self::Value, E> {
        if let Ok(small) = i32::try_from(i) {
            return Ok(self.own(qjs::JS_MKVAL(qjs::JS_TAG_INT, small)));
        }
        // A number, rounded to the nearest double beyond 2^53, as `JSON.parse` makes it (an
        // INTEGER argument becomes a BigInt there instead: its type says it is exact).
        Ok(self.own(qjs::JS_NewFloat64(i as f64)))
    }

    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<Self::Value, E> {
        match i64::try_from(u) {
            Ok(i) => self.visit_i64(i),
            Err(_) => Ok(self.own(qjs::JS_NewFloat64(u as f64))),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Self::Value, E> {
        Ok(self.own(qjs::JS_NewFloat64(f)))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
        // SAFETY: `s` is valid UTF-8 for its length.
        self.checked(unsafe { qjs::JS_NewStringLen(self.0, s.as_ptr().cast(), s.len() as _) })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let frame = ElementFrame::open(self.0);
        while let Some(element) = seq.next_element_seed(self)? {
            let raw = element.into_raw();
            ELEMENTS.with_borrow_mut(|elements| elements.push(raw));
        }
        let array = frame.close(|elements| {
            // SAFETY: `JS_NewArrayFrom` takes ownership of the elements, also when it fails.
            unsafe { qjs::JS_NewArrayFrom(self.0, elements.len() as _, elements.as_ptr()) }
        });
        self.checked(array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // SAFETY: a new object of this context, owned by `object`.
        let object = self.checked::<A::Error>(unsafe { qjs::JS_NewObject(self.0) })?;
        // The kept shape this object has so far (`None`: not followed).
        let mut shape = Some(0);
        let mut keys = 0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            keys += 1;
            let value = map.next_value_seed(self)?;
            let (atom, owned_atom) = self.key_atom(&key);
            if atom == qjs::JS_ATOM_NULL as qjs::JSAtom {
                return Err(js_failure());
            }
            shape = shape
                .filter(|_| !owned_atom && keys <= MAX_KEPT_SHAPE_KEYS)
                .and_then(|prefix| SHAPES.with_borrow_mut(|shapes| shapes.extend(self.0, prefix, atom)));
            // Defined as an own data property, as `JSON.parse` does: a `"__proto__"` key
            // becomes a property, never the object's prototype.
            // SAFETY: `JS_DefinePropertyValue` takes ownership of the value's reference.
            let status = unsafe {
                let status = qjs::JS_DefinePropertyValue(self.0, object.value, atom, value.into_raw(), qjs::JS_PROP_C_W_E as _);
                if owned_atom {
                    qjs::JS_FreeAtom(self.0, atom);
                }
                status
            };
            if status < 0 {
                return Err(js_failure());
            }
        }
        Ok(object)
    }
}

/// The elements of one array under construction: those pushed onto [`ELEMENTS`] since `open`.
/// Dropped without `close` (a syntax error inside the array), it frees them.
struct ElementFrame {
    ctx: *mut qjs::JSContext,
    start: usize,
}

impl ElementFrame {
    fn open(ctx: *mut qjs::JSContext) -> Self {
        ElementFrame { ctx, start: ELEMENTS.with_borrow(Vec::len) }
    }

    /// Hands this array's elements to `build`, which takes ownership of them.
    fn close(self, build: impl FnOnce(&[qjs::JSValue]) -> qjs::JSValue) -> qjs::JSValue {
        let result = ELEMENTS.with_borrow_mut(|elements| {
            let result = build(&elements[self.start..]);
            elements.truncate(self.start);
            result
        });
        std::mem::forget(self);
        result
    }
}

impl Drop for ElementFrame {
    fn drop(&mut self) {
        let rest = ELEMENTS.with_borrow_mut(|elements| elements.split_off(self.start));
        for value in rest {
            // SAFETY: each element is an owned reference.
            unsafe { qjs::JS_FreeValue(self.ctx, value) };
        }
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
