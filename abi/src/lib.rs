//! The bytes that cross the sandbox boundary, shared by the guest (`guest/`) and the host (`ext/`)
//! so that there is exactly one encoding.
//!
//! A request is a script's QuickJS bytecode (or, to compile one, its UTF-8 source) followed by an
//! input whose layout [`InputKind`] names, or a plugin call's rows of encoded arguments.
//! A response is one [`Response`]: a tag byte followed by its payload (little-endian numbers,
//! raw bytes for text, JSON and blobs). See `docs/abi.md` for the whole protocol.

#![forbid(unsafe_code)]

pub mod fnv;

/// Version of the host–guest protocol; the host refuses a guest that reports another one.
pub const ABI_VERSION: u32 = 5;

/// Declares a fieldless enum with explicit discriminants and its `from_raw` decoder, for the
/// integers that cross the ABI.
macro_rules! raw_enum {
    ($(#[$meta:meta])* pub enum $name:ident: $raw:ty { $($(#[$vmeta:meta])* $variant:ident = $value:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr($raw)]
        pub enum $name { $($(#[$vmeta])* $variant = $value,)* }

        impl $name {
            /// Decodes the raw integer; `None` for a value this ABI version does not know.
            pub fn from_raw(raw: $raw) -> Option<Self> {
                match raw {
                    $($value => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

raw_enum! {
/// What the input bytes of a request hold, i.e. what the script sees as `data`.
pub enum InputKind: u32 {
    /// No input bytes: `data` is `null`.
    Null = 0,
    /// JSON text, parsed by QuickJS's native `JSON.parse` (the fallback of `JsonSerde`).
    Json = 1,
    /// Eight bytes, a little-endian `i64`: `data` is a number (a BigInt beyond ±2^53).
    Integer = 2,
    /// Eight bytes, a little-endian `f64`: `data` is a number.
    Real = 3,
    /// JSON text, transcoded by serde_json straight into QuickJS values: js_eval's path, the
    /// faster one (see `docs/abi.md` for the measurement).
    JsonSerde = 4,
}
}

/// The input of a call, as the script will see it in `data`: the host encodes it after the
/// script's bytecode ([`Input::write_to`]), the guest decodes it ([`Input::decode`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input<'a> {
    Null,
    Integer(i64),
    Real(f64),
    /// JSON text (UTF-8), parsed by QuickJS's `JSON.parse`.
    Json(&'a [u8]),
    /// JSON text, transcoded by serde_json in the guest instead of QuickJS's parser.
    JsonSerde(&'a [u8]),
}

impl<'a> Input<'a> {
    pub fn kind(&self) -> InputKind {
        match self {
            Input::Null => InputKind::Null,
            Input::Integer(_) => InputKind::Integer,
            Input::Real(_) => InputKind::Real,
            Input::Json(_) => InputKind::Json,
            Input::JsonSerde(_) => InputKind::JsonSerde,
        }
    }

    /// Bytes of its encoding.
    pub fn len(&self) -> usize {
        match self {
            Input::Null => 0,
            Input::Integer(_) | Input::Real(_) => 8,
            Input::Json(bytes) | Input::JsonSerde(bytes) => bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Encodes it into `buf`, which is [`Input::len`] bytes long.
    pub fn write_to(&self, buf: &mut [u8]) {
        match *self {
            Input::Null => {}
            Input::Integer(i) => buf.copy_from_slice(&i.to_le_bytes()),
            Input::Real(f) => buf.copy_from_slice(&f.to_le_bytes()),
            Input::Json(bytes) | Input::JsonSerde(bytes) => buf.copy_from_slice(bytes),
        }
    }

    /// Decodes the input bytes of a request whose input is of `kind`.
    pub fn decode(kind: InputKind, bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let number = || <[u8; 8]>::try_from(bytes).map_err(|_| DecodeError("numeric input is not 8 bytes"));
        Ok(match kind {
            InputKind::Null => Input::Null,
            InputKind::Integer => Input::Integer(i64::from_le_bytes(number()?)),
            InputKind::Real => Input::Real(f64::from_le_bytes(number()?)),
            InputKind::Json => Input::Json(bytes),
            InputKind::JsonSerde => Input::JsonSerde(bytes),
        })
    }
}

/// The names of the guest's exports, which the host looks up (docs/abi.md has their
/// signatures). The guest's `#[no_mangle]` functions carry these names; the host checks at load
/// that the guest exports exactly these.
pub mod export_names {
    pub const MEMORY: &str = "memory";
    pub const ALLOC: &str = "jsbox_alloc";
    pub const SCRIPT_COMPILE: &str = "jsbox_script_compile";
    pub const EVAL: &str = "jsbox_eval";
    pub const CONSOLE: &str = "jsbox_console";
    pub const INFO: &str = "jsbox_info";
    pub const PLUGIN_COMPILE: &str = "jsbox_plugin_compile";
    pub const PLUGIN_LOAD: &str = "jsbox_plugin_load";
    pub const PLUGIN_CALL: &str = "jsbox_plugin_call";
    pub const RESEED: &str = "jsbox_reseed";
    pub const MODULE_COMPILE: &str = "jsbox_module_compile";
    pub const MODULES_ADD: &str = "jsbox_modules_add";
    pub const DETERMINISM: &str = "jsbox_determinism";
    pub const PLUGIN_MAIN_NUMBERS: &str = "jsbox_plugin_main_numbers";
    pub const RESPONSE: &str = "jsbox_response";

    /// All of them.
    pub const ALL: [&str; 15] = [
        MEMORY,
        ALLOC,
        SCRIPT_COMPILE,
        EVAL,
        CONSOLE,
        INFO,
        PLUGIN_COMPILE,
        PLUGIN_LOAD,
        PLUGIN_CALL,
        RESEED,
        MODULE_COMPILE,
        MODULES_ADD,
        DETERMINISM,
        PLUGIN_MAIN_NUMBERS,
        RESPONSE,
    ];
}

/// A scalar plugin's call whose arguments are all numbers, and whose result usually is one
/// (`jsbox_plugin_main_numbers`, docs/abi.md): the numbers cross as the call's parameters and
/// its result, with no request or response encoded in between.
pub mod numbers {
    use super::Response;

    /// 2^53: every integer of smaller magnitude is exactly one double, and no double is two of
    /// them (JavaScript's `Number.MAX_SAFE_INTEGER` is the last below it, 2^53 - 1).
    pub const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

    /// The most arguments that travel as parameters.
    pub const MAX_ARGS: usize = 4;

    /// The largest integer an argument passes as (its bit in the call's integer mask set): one
    /// QuickJS holds as an integer value, as an INTEGER argument that fits becomes.
    pub fn fits_integer(i: i64) -> bool {
        i32::try_from(i).is_ok()
    }

    /// What the call returns instead of a number's bits when its result must be read as a
    /// response (`jsbox_response`): a result that is not a number, an error, or console output.
    /// A NaN whose payload no JS value has: QuickJS holds NaN as its one canonical bit pattern,
    /// which the guest also returns for every NaN result.
    pub const SEE_RESPONSE: u64 = 0x7ff4_6a73_626f_7821;

    /// The bits a number result is returned as: its own, or the canonical NaN's.
    pub fn bits_of(result: f64) -> u64 {
        if result.is_nan() {
            f64::NAN.to_bits()
        } else {
            result.to_bits()
        }
    }

    /// The response a number result stands for: INTEGER for an integral number within ±2^53
    /// (SQLite would otherwise print `3.0`), else REAL.
    pub fn response(result: f64) -> Response<'static> {
        // (A round trip through i64 instead of `fract()`, which is a call to libm's `trunc` on
        // x86-64 without SSE4.1: one per scalar row.)
        let integer = result as i64;
        if result.abs() <= EXACT_INTEGER_LIMIT && integer as f64 == result {
            Response::Integer(integer)
        } else {
            Response::Real(result)
        }
    }
}

raw_enum! {
/// Why a call produced no value.
pub enum ErrorKind: u8 {
    /// The script threw (or failed to compile): the message is `Name: message (line N)`.
    Exception = 1,
    /// The JSON input could not be parsed.
    InvalidInput = 2,
    /// The script's value has no SQL counterpart (function, symbol, cyclic object...).
    UnsupportedResult = 3,
    /// QuickJS ran out of memory.
    OutOfMemory = 4,
    /// The script overflowed the JavaScript stack.
    StackOverflow = 5,
    /// The script itself is unusable before evaluation (e.g. it holds a NUL character).
    Script = 6,
    /// The host and guest disagree on the protocol.
    Abi = 7,
    /// An `import` named a module the instance was not given: the message is the module's
    /// name, for the host to fetch it from `js_modules` and try again.
    ModuleMissing = 8,
    /// The call used up its step budget (deterministic mode).
    StepLimit = 9,
}
}

raw_enum! {
/// How a stored module's source is turned into an ES module (`js_modules.kind`).
pub enum ModuleKind: u32 {
    /// An ES module: `import` and `export`.
    Module = 1,
    /// CommonJS or UMD (a bundle such as `turf.min.js`): the source runs as a function of
    /// `exports` and `module`; `module.exports` is the default export, its keys the named ones.
    CommonJs = 2,
}
}

impl ModuleKind {
    /// The name used in the `js_modules.kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Module => "module",
            Self::CommonJs => "commonjs",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Module, Self::CommonJs].into_iter().find(|kind| kind.as_str() == name)
    }
}

/// A list of named byte strings (module names with their source or bytecode), as it crosses
/// the ABI: each entry is a little-endian `u32` length and the name, then a `u32` length and
/// the bytes.
pub mod named_bytes {
    use super::DecodeError;

    /// Appends one entry to `out`.
    pub fn encode_into(out: &mut Vec<u8>, name: &str, bytes: &[u8]) {
        for part in [name.as_bytes(), bytes] {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            out.extend_from_slice(part);
        }
    }

    /// The entries of `bytes`, in order.
    pub fn decode(mut bytes: &[u8]) -> Result<Vec<(&str, &[u8])>, DecodeError> {
        let mut entries = Vec::new();
        while !bytes.is_empty() {
            let (name, rest) = part(bytes)?;
            let name = std::str::from_utf8(name).map_err(|_| DecodeError("name is not UTF-8"))?;
            let (value, rest) = part(rest)?;
            entries.push((name, value));
            bytes = rest;
        }
        Ok(entries)
    }

    /// One length-prefixed part, and the bytes after it.
    fn part(bytes: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
        let (len, rest) = bytes.split_first_chunk::<4>().ok_or(DecodeError("truncated length"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(DecodeError("truncated entry"));
        }
        Ok(rest.split_at(len))
    }
}

/// Tag bytes of an encoded [`Response`].
mod tag {
    pub const NULL: u8 = 0;
    pub const INTEGER: u8 = 1;
    pub const REAL: u8 = 2;
    pub const TEXT: u8 = 3;
    pub const BLOB: u8 = 4;
    pub const JSON: u8 = 5;
    pub const ERROR: u8 = 0x80;
    /// Or'ed into any tag: the call wrote console output (`jsbox_console` reads it), so that
    /// the host asks for it only then.
    pub const CONSOLE: u8 = 0x40;
}

/// The result of one call, borrowing its bytes from wherever it was decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum Response<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
    /// An object or array, as JSON text.
    Json(&'a str),
    Error(ErrorKind, &'a str),
}

/// A response the host could not decode: a guest bug or a guest of another ABI version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed guest response: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

impl<'a> Response<'a> {
    /// Appends the encoded response to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match *self {
            Response::Null => out.push(tag::NULL),
            Response::Integer(i) => {
                out.push(tag::INTEGER);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Response::Real(f) => {
                out.push(tag::REAL);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Response::Text(s) => encode_bytes(out, tag::TEXT, s.as_bytes()),
            Response::Blob(b) => encode_bytes(out, tag::BLOB, b),
            Response::Json(s) => encode_bytes(out, tag::JSON, s.as_bytes()),
            Response::Error(kind, message) => {
                out.push(tag::ERROR);
                out.push(kind as u8);
                out.extend_from_slice(message.as_bytes());
            }
        }
    }

    /// Decodes a response, borrowing text and blobs from `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let (&tag, payload) = bytes.split_first().ok_or(DecodeError("empty"))?;
        let tag = tag & !tag::CONSOLE;
        let text = |payload: &'a [u8]| std::str::from_utf8(payload).map_err(|_| DecodeError("text is not UTF-8"));
        let number =
            |payload: &[u8]| -> Result<[u8; 8], DecodeError> { payload.try_into().map_err(|_| DecodeError("number is not 8 bytes")) };
        Ok(match tag {
            tag::NULL => Response::Null,
            tag::INTEGER => Response::Integer(i64::from_le_bytes(number(payload)?)),
            tag::REAL => Response::Real(f64::from_le_bytes(number(payload)?)),
            tag::TEXT => Response::Text(text(payload)?),
            tag::BLOB => Response::Blob(payload),
            tag::JSON => Response::Json(text(payload)?),
            tag::ERROR => {
                let (&kind, message) = payload.split_first().ok_or(DecodeError("empty error"))?;
                let kind = ErrorKind::from_raw(kind).ok_or(DecodeError("unknown error kind"))?;
                Response::Error(kind, text(message)?)
            }
            _ => return Err(DecodeError("unknown tag")),
        })
    }
}

/// Marks an encoded response: the call that made it wrote console output.
pub fn mark_console(response: &mut [u8]) {
    if let Some(tag) = response.first_mut() {
        *tag |= tag::CONSOLE;
    }
}

/// Whether an encoded response says its call wrote console output.
pub fn has_console(response: &[u8]) -> bool {
    response.first().is_some_and(|tag| tag & tag::CONSOLE != 0)
}

fn encode_bytes(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.reserve(1 + bytes.len());
    out.push(tag);
    out.extend_from_slice(bytes);
}

raw_enum! {
/// The kinds of stored plugins, and the functions each must define.
pub enum PluginKind: u32 {
    /// `main(...args)`.
    Scalar = 0,
    /// `init()`, `step(state, ...args)`, `final(state)`.
    Aggregate = 1,
    /// As aggregate, plus `inverse(state, ...args)`; `value(state)` is optional.
    Window = 2,
}
}

impl PluginKind {
    /// The name used in the `js_plugins.kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Aggregate => "aggregate",
            Self::Window => "window",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Scalar, Self::Aggregate, Self::Window].into_iter().find(|k| k.as_str() == name)
    }

    /// The JavaScript functions a plugin of this kind must define.
    pub fn required_functions(self) -> &'static [PluginFunction] {
        use PluginFunction::*;
        match self {
            Self::Scalar => &[Main],
            Self::Aggregate => &[Init, Step, Final],
            Self::Window => &[Init, Step, Final, Inverse],
        }
    }
}

/// The functions of the plugin contract (docs/functions.md, "The contract"), each with the
/// global name a plugin defines it under. The guest keeps a loaded plugin's functions indexed
/// by this enum, so that a call looks up nothing by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PluginFunction {
    Main,
    Init,
    Step,
    Final,
    Inverse,
    Value,
}

impl PluginFunction {
    /// Every function of the contract, in the order of their indices.
    pub const ALL: [PluginFunction; 6] = [Self::Main, Self::Init, Self::Step, Self::Final, Self::Inverse, Self::Value];

    /// The global name a plugin defines it under.
    pub fn name(self) -> &'static str {
        match self {
            Self::Main => "main",
            Self::Init => "init",
            Self::Step => "step",
            Self::Final => "final",
            Self::Inverse => "inverse",
            Self::Value => "value",
        }
    }

    /// Its index in [`PluginFunction::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

raw_enum! {
/// What `jsbox_plugin_call` does with the loaded plugin.
pub enum PluginOp: u32 {
    /// `main(...args)` for one row; responds with the result.
    Main = 0,
    /// `state = init()`; responds NULL.
    Init = 1,
    /// `state = step(state, ...args)` for each row; responds NULL.
    Step = 2,
    /// `state = inverse(state, ...args)` for each row; responds NULL.
    Inverse = 3,
    /// `final(state)`; responds with the result.
    Final = 4,
    /// `value(state)` if defined, else `final(state)`; responds with the result.
    Value = 5,
}
}

/// One SQL argument of a plugin call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg<'a> {
    Null,
    Integer(i64),
    Real(f64),
    /// TEXT that is not a JSON object or array: a JS string.
    Text(&'a str),
    Blob(&'a [u8]),
    /// TEXT that looks like a JSON object or array (first non-blank byte `{` or `[`): the guest
    /// parses it, and passes it as a string if it is not valid JSON.
    Json(&'a str),
}

mod arg_tag {
    pub const NULL: u8 = 0;
    pub const INTEGER: u8 = 1;
    pub const REAL: u8 = 2;
    pub const TEXT: u8 = 3;
    pub const BLOB: u8 = 4;
    pub const JSON: u8 = 5;
}

impl<'a> Arg<'a> {
    /// Classifies TEXT: JSON objects and arrays arrive parsed, anything else as a string.
    pub fn from_text(text: &'a str) -> Self {
        match text.trim_start().as_bytes().first() {
            Some(b'{' | b'[') => Arg::Json(text),
            _ => Arg::Text(text),
        }
    }

    /// Appends the encoded argument to `out`: a tag byte, then a little-endian number, or a
    /// `u32` length and the bytes.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut bytes = |tag: u8, bytes: &[u8]| {
            out.push(tag);
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        };
        match *self {
            Arg::Null => out.push(arg_tag::NULL),
            Arg::Integer(i) => {
                out.push(arg_tag::INTEGER);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Arg::Real(f) => {
                out.push(arg_tag::REAL);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Arg::Text(s) => bytes(arg_tag::TEXT, s.as_bytes()),
            Arg::Blob(b) => bytes(arg_tag::BLOB, b),
            Arg::Json(s) => bytes(arg_tag::JSON, s.as_bytes()),
        }
    }

    /// Decodes one argument from the front of `bytes`, returning it and the rest.
    pub fn decode(bytes: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let (&tag, rest) = bytes.split_first().ok_or(DecodeError("missing argument"))?;
        let take = |rest: &'a [u8], n: usize| {
            if rest.len() < n {
                Err(DecodeError("truncated argument"))
            } else {
                Ok(rest.split_at(n))
            }
        };
        let eight = |rest: &'a [u8]| -> Result<([u8; 8], &'a [u8]), DecodeError> {
            let (head, rest) = take(rest, 8)?;
            Ok((head.try_into().expect("8 bytes"), rest))
        };
        let sized = |rest: &'a [u8]| -> Result<(&'a [u8], &'a [u8]), DecodeError> {
            let (len, rest) = take(rest, 4)?;
            take(rest, u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize)
        };
        let text = |b: &'a [u8]| std::str::from_utf8(b).map_err(|_| DecodeError("text is not UTF-8"));
        Ok(match tag {
            arg_tag::NULL => (Arg::Null, rest),
            arg_tag::INTEGER => eight(rest).map(|(b, r)| (Arg::Integer(i64::from_le_bytes(b)), r))?,
            arg_tag::REAL => eight(rest).map(|(b, r)| (Arg::Real(f64::from_le_bytes(b)), r))?,
            arg_tag::TEXT => sized(rest).and_then(|(b, r)| Ok((Arg::Text(text(b)?), r)))?,
            arg_tag::BLOB => sized(rest).map(|(b, r)| (Arg::Blob(b), r))?,
            arg_tag::JSON => sized(rest).and_then(|(b, r)| Ok((Arg::Json(text(b)?), r)))?,
            _ => return Err(DecodeError("unknown argument tag")),
        })
    }
}

/// Packs a guest buffer's address and length into the `i64` that ABI functions return.
pub fn pack_ptr_len(ptr: u32, len: u32) -> u64 {
    ((ptr as u64) << 32) | len as u64
}

/// Splits the `i64` returned by an ABI function into the buffer's address and length.
pub fn unpack_ptr_len(packed: u64) -> (u32, u32) {
    ((packed >> 32) as u32, packed as u32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_become_integers_when_integral_and_exact() {
        use super::numbers::{response, EXACT_INTEGER_LIMIT};
        use super::Response;
        let cases = [
            (0.0, Response::Integer(0)),
            (-0.0, Response::Integer(0)),
            (7.0, Response::Integer(7)),
            (-3.0, Response::Integer(-3)),
            (2.5, Response::Real(2.5)),
            (-2.5, Response::Real(-2.5)),
            (EXACT_INTEGER_LIMIT, Response::Integer(1 << 53)),
            (-EXACT_INTEGER_LIMIT, Response::Integer(-(1 << 53))),
            (EXACT_INTEGER_LIMIT + 2.0, Response::Real(EXACT_INTEGER_LIMIT + 2.0)),
            (1e300, Response::Real(1e300)),
            (f64::INFINITY, Response::Real(f64::INFINITY)),
            (f64::NEG_INFINITY, Response::Real(f64::NEG_INFINITY)),
            (0.1 + 0.2, Response::Real(0.1 + 0.2)),
        ];
        for (number, expected) in cases {
            assert_eq!(response(number), expected, "{number}");
        }
        assert!(matches!(response(f64::NAN), Response::Real(f) if f.is_nan()));
    }

    use super::*;

    fn round_trip(response: Response<'_>) {
        let mut bytes = Vec::new();
        response.encode_into(&mut bytes);
        assert_eq!(Response::decode(&bytes).unwrap(), response);
    }

    #[test]
    fn every_variant_round_trips() {
        round_trip(Response::Null);
        round_trip(Response::Integer(i64::MIN));
        round_trip(Response::Integer(-1));
        round_trip(Response::Real(0.1));
        round_trip(Response::Real(f64::INFINITY));
        round_trip(Response::Text(""));
        round_trip(Response::Text("héllo\u{1F600}"));
        round_trip(Response::Blob(&[0, 255, 1]));
        round_trip(Response::Json("{\"a\":[1,2]}"));
        round_trip(Response::Error(ErrorKind::Exception, "TypeError: x (line 2)"));
    }

    #[test]
    fn malformed_responses_are_refused() {
        assert_eq!(Response::decode(&[]), Err(DecodeError("empty")));
        assert_eq!(Response::decode(&[tag::INTEGER, 1, 2]), Err(DecodeError("number is not 8 bytes")));
        assert_eq!(Response::decode(&[tag::TEXT, 0xff]), Err(DecodeError("text is not UTF-8")));
        assert_eq!(Response::decode(&[0x17]), Err(DecodeError("unknown tag")));
        assert_eq!(Response::decode(&[tag::ERROR, 99]), Err(DecodeError("unknown error kind")));
    }

    #[test]
    fn arguments_round_trip_in_sequence() {
        let args =
            [Arg::Null, Arg::Integer(-7), Arg::Real(2.5), Arg::from_text("plain"), Arg::from_text("  {\"a\": 1}"), Arg::Blob(&[1, 2])];
        assert_eq!(args[3], Arg::Text("plain"));
        assert_eq!(args[4], Arg::Json("  {\"a\": 1}"));
        let mut bytes = Vec::new();
        args.iter().for_each(|a| a.encode_into(&mut bytes));
        let mut rest = &bytes[..];
        for expected in args {
            let (arg, next) = Arg::decode(rest).unwrap();
            assert_eq!(arg, expected);
            rest = next;
        }
        assert!(rest.is_empty());
        assert_eq!(Arg::decode(&[arg_tag::TEXT, 9, 0, 0, 0, b'x']), Err(DecodeError("truncated argument")));
    }

    #[test]
    fn plugin_kinds_name_their_functions() {
        assert_eq!(PluginKind::parse("window"), Some(PluginKind::Window));
        assert_eq!(PluginKind::parse("table"), None);
        let names: Vec<&str> = PluginKind::Aggregate.required_functions().iter().map(|f| f.name()).collect();
        assert_eq!(names, ["init", "step", "final"]);
        assert!(PluginFunction::ALL.iter().enumerate().all(|(i, f)| f.index() == i));
    }

    #[test]
    fn inputs_decode_to_what_was_encoded() {
        for input in [Input::Null, Input::Integer(-(1 << 60)), Input::Real(-0.5), Input::Json(b"[1]"), Input::JsonSerde(b"{}")] {
            let mut buf = vec![0; input.len()];
            input.write_to(&mut buf);
            assert_eq!(Input::decode(input.kind(), &buf), Ok(input));
        }
        assert_eq!(Input::decode(InputKind::Real, &[0; 7]), Err(DecodeError("numeric input is not 8 bytes")));
    }

    #[test]
    fn named_bytes_round_trip_and_refuse_truncation() {
        let mut bytes = Vec::new();
        named_bytes::encode_into(&mut bytes, "turf", b"bytecode");
        named_bytes::encode_into(&mut bytes, "", b"");
        assert_eq!(named_bytes::decode(&bytes).unwrap(), vec![("turf", &b"bytecode"[..]), ("", &b""[..])]);
        assert!(named_bytes::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(named_bytes::decode(&bytes[..6]).is_err());
        assert_eq!(ModuleKind::parse("commonjs"), Some(ModuleKind::CommonJs));
        assert_eq!(ModuleKind::parse("umd"), None);
    }

    #[test]
    fn the_console_mark_leaves_the_response_as_it_was() {
        for response in [Response::Null, Response::Integer(7), Response::Error(ErrorKind::Exception, "x")] {
            let mut bytes = Vec::new();
            response.encode_into(&mut bytes);
            assert!(!has_console(&bytes));
            mark_console(&mut bytes);
            assert!(has_console(&bytes));
            assert_eq!(Response::decode(&bytes).unwrap(), response);
        }
    }

    #[test]
    fn pointers_pack_and_unpack() {
        assert_eq!(unpack_ptr_len(pack_ptr_len(0xdead_beef, 7)), (0xdead_beef, 7));
    }
}
