//! The host side of the guest ABI (`guest/src/lib.rs`, `docs/abi.md`): which exports exist, and
//! how a request is written into a guest instance and its response read back. The byte encoding
//! itself lives in the shared `jsbox-abi` crate.

use std::cell::{Cell, OnceCell};

pub use jsbox_abi::Input;
use jsbox_abi::{export_names as names, named_bytes, numbers, unpack_ptr_len, ModuleKind, PluginKind, PluginOp};
use rusqlite::types::ValueRef;
use wasmtime::{Extern, Instance, Memory, Module, ModuleExport, Store, TypedFunc, WasmParams, WasmResults};

use crate::error::CallError;

/// Export indices resolved once per process, so that binding an instance does no name lookups.
pub struct GuestExports {
    memory: ModuleExport,
    alloc: ModuleExport,
    script_compile: ModuleExport,
    eval: ModuleExport,
    console: ModuleExport,
    info: ModuleExport,
    plugin_compile: ModuleExport,
    plugin_load: ModuleExport,
    plugin_call: ModuleExport,
    reseed: ModuleExport,
    module_compile: ModuleExport,
    modules_add: ModuleExport,
    determinism: ModuleExport,
    plugin_main_numbers: ModuleExport,
    response: ModuleExport,
}

impl GuestExports {
    /// The exports of `module`, which must be exactly those jsbox-abi names.
    pub fn resolve(module: &Module) -> Result<Self, CallError> {
        let mut exported: Vec<&str> = module.exports().map(|export| export.name()).collect();
        exported.sort_unstable();
        let mut expected = names::ALL;
        expected.sort_unstable();
        if exported != expected {
            return Err(CallError::Internal(format!("the guest exports {exported:?}, not the ABI's {expected:?}")));
        }
        let export =
            |name: &str| module.get_export_index(name).ok_or_else(|| CallError::Internal(format!("the guest has no `{name}` export")));
        Ok(GuestExports {
            memory: export(names::MEMORY)?,
            alloc: export(names::ALLOC)?,
            script_compile: export(names::SCRIPT_COMPILE)?,
            eval: export(names::EVAL)?,
            console: export(names::CONSOLE)?,
            info: export(names::INFO)?,
            plugin_compile: export(names::PLUGIN_COMPILE)?,
            plugin_load: export(names::PLUGIN_LOAD)?,
            plugin_call: export(names::PLUGIN_CALL)?,
            reseed: export(names::RESEED)?,
            module_compile: export(names::MODULE_COMPILE)?,
            modules_add: export(names::MODULES_ADD)?,
            determinism: export(names::DETERMINISM)?,
            plugin_main_numbers: export(names::PLUGIN_MAIN_NUMBERS)?,
            response: export(names::RESPONSE)?,
        })
    }
}

/// The exports of one live guest instance. The memory is bound at once; each function at its
/// first use ([`Lazy`]): an instance calls two or three of its twelve, and typing a function
/// (wasmtime looks its type up in the engine's registry and counts a reference) cost a tenth of
/// a fresh world's time when all twelve were bound up front.
pub struct Guest {
    memory: Memory,
    instance: Instance,
    /// Bytes the guest's request buffer holds (its last `jsbox_alloc(len)` made `len + 1`): a
    /// request that fits, with its NUL, is written in place without crossing into the guest.
    request_capacity: Cell<usize>,
    /// Where that buffer is in guest memory.
    request_at: Cell<usize>,
    alloc: Lazy<u32, u32>,
    script_compile: Lazy<u32, u64>,
    eval: Lazy<(u32, u32, u32, u64), u64>,
    console: Lazy<(), u64>,
    info: Lazy<(), u64>,
    plugin_compile: Lazy<(u32, u32), u64>,
    plugin_load: Lazy<(u32, u32, u64), u64>,
    plugin_call: Lazy<(u32, u32, u32, u32), u64>,
    reseed: Lazy<u64, ()>,
    module_compile: Lazy<(u32, u32), u64>,
    modules_add: Lazy<u32, u64>,
    determinism: Lazy<(u64, u64, u32), ()>,
    plugin_main_numbers: Lazy<(u32, u32, f64, f64, f64, f64), u64>,
    response: Lazy<(), u64>,
}

/// A guest function, bound at its first use.
struct Lazy<P, R> {
    export: &'static ModuleExport,
    func: OnceCell<TypedFunc<P, R>>,
}

impl<P: WasmParams, R: WasmResults> Lazy<P, R> {
    fn new(export: &'static ModuleExport) -> Self {
        Lazy { export, func: OnceCell::new() }
    }

    fn get<T>(&self, store: &mut Store<T>, instance: Instance) -> GuestResult<&TypedFunc<P, R>> {
        if let Some(func) = self.func.get() {
            return Ok(func);
        }
        let func = instance
            .get_module_export(&mut *store, self.export)
            .ok_or_else(|| wasmtime::Error::msg("guest export missing from instance"))?
            .into_func()
            .ok_or_else(|| wasmtime::Error::msg("guest export is not a function"))?
            .typed(&*store)?;
        Ok(self.func.get_or_init(|| func))
    }
}

/// A scalar call's arguments when they are few numbers that the guest takes as they are
/// (`jsbox_plugin_main_numbers`): REAL, and INTEGER within what QuickJS holds as an integer.
pub struct NumberArgs {
    count: u32,
    /// Bit `i`: argument `i` is an integer.
    integers: u32,
    values: [f64; numbers::MAX_ARGS],
}

impl NumberArgs {
    /// `args` as numbers, or `None` if one is not such a number or they are too many.
    pub fn of<'a>(args: impl ExactSizeIterator<Item = ValueRef<'a>>) -> Option<Self> {
        if args.len() > numbers::MAX_ARGS {
            return None;
        }
        let mut numbers = NumberArgs { count: args.len() as u32, integers: 0, values: [0.0; numbers::MAX_ARGS] };
        for (i, arg) in args.enumerate() {
            numbers.values[i] = match arg {
                ValueRef::Real(f) => f,
                ValueRef::Integer(n) if numbers::fits_integer(n) => {
                    numbers.integers |= 1 << i;
                    n as f64
                }
                _ => return None,
            };
        }
        Some(numbers)
    }
}

/// A guest call failed before a response existed: a trap (limit, fault) or a protocol error.
pub type GuestResult<T> = Result<T, wasmtime::Error>;

impl Guest {
    pub fn bind<T>(store: &mut Store<T>, instance: &Instance, exports: &'static GuestExports) -> GuestResult<Self> {
        let memory = match instance.get_module_export(&mut *store, &exports.memory) {
            Some(Extern::Memory(memory)) => memory,
            Some(_) => return Err(wasmtime::Error::msg("guest `memory` is not a memory")),
            None => return Err(wasmtime::Error::msg("guest export missing from instance")),
        };
        Ok(Guest {
            memory,
            instance: *instance,
            request_capacity: Cell::new(0),
            request_at: Cell::new(0),
            alloc: Lazy::new(&exports.alloc),
            script_compile: Lazy::new(&exports.script_compile),
            eval: Lazy::new(&exports.eval),
            console: Lazy::new(&exports.console),
            info: Lazy::new(&exports.info),
            plugin_compile: Lazy::new(&exports.plugin_compile),
            plugin_load: Lazy::new(&exports.plugin_load),
            plugin_call: Lazy::new(&exports.plugin_call),
            reseed: Lazy::new(&exports.reseed),
            module_compile: Lazy::new(&exports.module_compile),
            modules_add: Lazy::new(&exports.modules_add),
            determinism: Lazy::new(&exports.determinism),
            plugin_main_numbers: Lazy::new(&exports.plugin_main_numbers),
            response: Lazy::new(&exports.response),
        })
    }

    /// Lets `write` fill a request of `len` bytes in the guest's request buffer, followed by a
    /// NUL byte; the buffer is grown (a call into the guest) only when the request does not fit.
    fn write_request<T>(&self, store: &mut Store<T>, len: usize, write: impl FnOnce(&mut [u8])) -> GuestResult<u32> {
        let len32 = u32::try_from(len).map_err(|_| wasmtime::Error::msg("request over 4 GiB"))?;
        if len >= self.request_capacity.get() {
            self.request_at.set(self.alloc.get(store, self.instance)?.call(&mut *store, len32)? as usize);
            self.request_capacity.set(len + 1);
        }
        let at = self.request_at.get();
        let buf = self
            .memory
            .data_mut(&mut *store)
            .get_mut(at..at + len + 1)
            .ok_or_else(|| wasmtime::Error::msg("guest request buffer out of bounds"))?;
        let (request, terminator) = buf.split_at_mut(len);
        write(request);
        terminator[0] = 0;
        Ok(len32)
    }

    /// Compiles a script without running it; hands the encoded response (bytecode or syntax
    /// error) to `read`.
    pub fn script_compile<T, R>(&self, store: &mut Store<T>, source: &[u8], read: impl FnOnce(&[u8]) -> R) -> GuestResult<R> {
        self.exchange(store, source, |store, len| self.script_compile.get(store, self.instance)?.call(&mut *store, len), read)
    }

    /// Runs a compiled script with `input` and hands the encoded response to `read` while the
    /// bytes are still in guest memory.
    pub fn eval<T, R>(
        &self,
        store: &mut Store<T>,
        bytecode: &[u8],
        input: Input<'_>,
        seed: u64,
        read: impl FnOnce(&[u8]) -> R,
    ) -> GuestResult<R> {
        self.write_request(store, bytecode.len() + input.len(), |request| {
            let (code, input_buf) = request.split_at_mut(bytecode.len());
            code.copy_from_slice(bytecode);
            input.write_to(input_buf);
        })?;
        let packed = self
            .eval
            .get(store, self.instance)?
            .call(&mut *store, (bytecode.len() as u32, input.kind() as u32, input.len() as u32, seed))?;
        Ok(read(self.read(store, packed)?))
    }

    /// Compiles a plugin's source; hands the encoded response (bytecode or error) to `read`.
    pub fn plugin_compile<T, R>(
        &self,
        store: &mut Store<T>,
        source: &[u8],
        kind: PluginKind,
        read: impl FnOnce(&[u8]) -> R,
    ) -> GuestResult<R> {
        self.exchange(
            store,
            source,
            |store, len| self.plugin_compile.get(store, self.instance)?.call(&mut *store, (len, kind as u32)),
            read,
        )
    }

    /// Loads plugin bytecode into this instance.
    pub fn plugin_load<T, R>(
        &self,
        store: &mut Store<T>,
        bytecode: &[u8],
        kind: PluginKind,
        seed: u64,
        read: impl FnOnce(&[u8]) -> R,
    ) -> GuestResult<R> {
        self.exchange(
            store,
            bytecode,
            |store, len| self.plugin_load.get(store, self.instance)?.call(&mut *store, (len, kind as u32, seed)),
            read,
        )
    }

    /// Calls the loaded plugin over `rows` rows of `nargs` encoded arguments.
    pub fn plugin_call<T, R>(
        &self,
        store: &mut Store<T>,
        op: PluginOp,
        rows: u32,
        nargs: u32,
        args: &[u8],
        read: impl FnOnce(&[u8]) -> R,
    ) -> GuestResult<R> {
        self.exchange(
            store,
            args,
            |store, len| self.plugin_call.get(store, self.instance)?.call(&mut *store, (op as u32, rows, nargs, len)),
            read,
        )
    }

    /// Calls the loaded scalar plugin's `main` on `args`: its result if it is a number, else
    /// what `read` makes of the encoded response (another value, an error, console output).
    pub fn plugin_main_numbers<T, R>(
        &self,
        store: &mut Store<T>,
        args: &NumberArgs,
        read: impl FnOnce(&[u8]) -> R,
    ) -> GuestResult<Result<f64, R>> {
        let [a0, a1, a2, a3] = args.values;
        let bits = self.plugin_main_numbers.get(store, self.instance)?.call(&mut *store, (args.count, args.integers, a0, a1, a2, a3))?;
        if bits != numbers::SEE_RESPONSE {
            return Ok(Ok(f64::from_bits(bits)));
        }
        let packed = self.response.get(store, self.instance)?.call(&mut *store, ())?;
        Ok(Err(read(self.read(store, packed)?)))
    }

    /// Sets deterministic mode for the next call: a budget of `budget` interrupt checks (0:
    /// none), and `Math.random` reseeded at each row from `row_seed` and the row, if given.
    pub fn determinism<T>(&self, store: &mut Store<T>, budget: u64, row_seed: Option<u64>) -> GuestResult<()> {
        self.determinism.get(store, self.instance)?.call(&mut *store, (budget, row_seed.unwrap_or(0), u32::from(row_seed.is_some())))
    }

    /// Reseeds `Math.random` (in an instance started from a loaded world's image).
    pub fn reseed<T>(&self, store: &mut Store<T>, seed: u64) -> GuestResult<()> {
        self.reseed.get(store, self.instance)?.call(&mut *store, seed)
    }

    /// Compiles stored module `name` of `kind`; hands the encoded response (bytecode or error)
    /// to `read`.
    pub fn module_compile<T, R>(
        &self,
        store: &mut Store<T>,
        name: &str,
        source: &[u8],
        kind: ModuleKind,
        read: impl FnOnce(&[u8]) -> R,
    ) -> GuestResult<R> {
        let mut request = Vec::with_capacity(name.len() + source.len() + 8);
        named_bytes::encode_into(&mut request, name, source);
        self.exchange(
            store,
            &request,
            |store, len| self.module_compile.get(store, self.instance)?.call(&mut *store, (len, kind as u32)),
            read,
        )
    }

    /// Gives the instance modules to import: encoded `named_bytes` (name, bytecode).
    pub fn modules_add<T, R>(&self, store: &mut Store<T>, modules: &[u8], read: impl FnOnce(&[u8]) -> R) -> GuestResult<R> {
        self.exchange(store, modules, |store, len| self.modules_add.get(store, self.instance)?.call(&mut *store, len), read)
    }

    /// Forgets where the guest's request buffer is (its memory was reset to an image): the next
    /// request asks the guest for one.
    pub fn forget_request_buffer(&self) {
        self.request_capacity.set(0);
    }

    /// The memory, for the host to copy or map a loaded world's image.
    pub fn memory(&self) -> Memory {
        self.memory
    }

    /// Copies `request` into the guest, runs `call` with its length, and hands the response to
    /// `read` while it is still in guest memory.
    fn exchange<T, R>(
        &self,
        store: &mut Store<T>,
        request: &[u8],
        call: impl FnOnce(&mut Store<T>, u32) -> GuestResult<u64>,
        read: impl FnOnce(&[u8]) -> R,
    ) -> GuestResult<R> {
        let len = self.write_request(store, request.len(), |buf| buf.copy_from_slice(request))?;
        let packed = call(&mut *store, len)?;
        Ok(read(self.read(store, packed)?))
    }

    /// The console output the last call captured.
    pub fn console<'s, T>(&self, store: &'s mut Store<T>) -> GuestResult<&'s [u8]> {
        let packed = self.console.get(store, self.instance)?.call(&mut *store, ())?;
        self.read(store, packed)
    }

    /// The guest's self-description (JSON).
    pub fn info<'s, T>(&self, store: &'s mut Store<T>) -> GuestResult<&'s [u8]> {
        let packed = self.info.get(store, self.instance)?.call(&mut *store, ())?;
        self.read(store, packed)
    }

    fn read<'s, T>(&self, store: &'s Store<T>, packed: u64) -> GuestResult<&'s [u8]> {
        let (ptr, len) = unpack_ptr_len(packed);
        let (ptr, len) = (ptr as usize, len as usize);
        self.memory.data(store).get(ptr..ptr + len).ok_or_else(|| wasmtime::Error::msg("guest response out of bounds"))
    }
}
