//! Stored modules on the host side: compiling a `js_modules` row to bytecode, and finding every
//! module a script, plugin or module imports.
//!
//! The guest cannot read the database, and QuickJS resolves a module's imports as it compiles
//! it. So the host gives a sandbox the modules it knows of, and runs the work; if an `import`
//! names one it was not given, the guest says which (`CallError::ModuleMissing`), and the host
//! reads that row, compiles it (with its own imports, the same way) and tries again in a new
//! sandbox ([`Imports::resolve`]). The result is the [`ModuleSet`] the work needs, in an order
//! where each module comes after what it imports; plugins keep it with their bytecode, and every
//! world of the plugin is given it before the plugin is loaded.
//!
//! Three look-alike types: a [`ModuleRow`] is what the table holds; a [`CompiledModule`] is a row
//! compiled (cached per connection by name, kind and exact source); a [`ModuleSet`] is the
//! compiled modules one piece of work imports.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use jsbox_abi::{named_bytes, ModuleKind};

use crate::bounded_cache::BoundedCache;
use crate::error::{CallError, ModuleError};
use crate::sandbox::{bytecode_response, response_to_value, Limits, Sandbox};

/// A row of `js_modules`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleRow {
    pub name: String,
    pub kind: ModuleKind,
    pub source: Arc<str>,
}

/// A module compiled to ES module bytecode.
#[derive(Debug)]
pub struct CompiledModule {
    pub row: ModuleRow,
    bytecode: Vec<u8>,
}

/// The modules one script or plugin imports, each after what it imports.
#[derive(Debug, Default, Clone)]
pub struct ModuleSet(Vec<Arc<CompiledModule>>);

/// Modules one script, plugin or module may import (directly or not) at most.
const MAX_MODULES: usize = 256;

impl ModuleSet {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<CompiledModule>> {
        self.0.iter()
    }

    fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|module| module.row.name == name)
    }

    fn add(&mut self, module: Arc<CompiledModule>) {
        if !self.contains(&module.row.name) {
            self.0.push(module);
        }
    }

    /// The modules' names and bytecode, as `jsbox_modules_add` takes them.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.iter().map(|m| m.row.name.len() + m.bytecode.len() + 8).sum());
        for module in &self.0 {
            named_bytes::encode_into(&mut out, &module.row.name, &module.bytecode);
        }
        out
    }

    /// Bytes of source and bytecode it holds.
    pub fn bytes(&self) -> usize {
        self.0.iter().map(|m| m.row.source.len() + m.bytecode.len()).sum()
    }

    /// Whether every module is still what `read` finds in the table.
    pub fn is_current(&self, read: ReadModule<'_>) -> Result<bool, CallError> {
        for module in &self.0 {
            if read(&module.row.name)?.as_ref() != Some(&module.row) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Reads module `name`'s row from the connection's `js_modules` (`None`: no such row).
pub type ReadModule<'a> = &'a dyn Fn(&str) -> Result<Option<ModuleRow>, CallError>;

/// Source plus bytecode bytes of compiled modules a connection keeps.
const CACHE_BYTES: usize = 64 << 20;

/// A connection's compiled modules, by name, kind and exact source.
pub type ModuleCache = BoundedCache<(String, ModuleKind, Arc<str>), Arc<CompiledModule>, CACHE_BYTES>;

/// Finds, compiles and caches the modules some work imports.
pub struct Imports<'a> {
    read: ReadModule<'a>,
    cache: &'a Mutex<ModuleCache>,
    limits: &'a Limits,
    /// When the work began: its attempts share one time limit.
    started: Instant,
    /// The modules being compiled, outermost first (an import of one of them is a cycle).
    compiling: Vec<String>,
}

impl<'a> Imports<'a> {
    pub fn new(read: ReadModule<'a>, cache: &'a Mutex<ModuleCache>, limits: &'a Limits) -> Self {
        Imports { read, cache, limits, started: Instant::now(), compiling: Vec::new() }
    }

    /// Runs `f` with imports from an empty table (for work that imports nothing: benchmarks,
    /// tests of the sandbox alone).
    pub fn none<T>(limits: &Limits, f: impl FnOnce(&mut Imports<'_>) -> T) -> T {
        let cache = Mutex::default();
        let read = |_: &str| Ok(None);
        f(&mut Imports::new(&read, &cache, limits))
    }

    /// The current versions of modules `names` (and what each needs that is known now), to
    /// start [`Imports::resolve`] with what the work needed last time.
    pub fn current(&mut self, names: &[String]) -> Result<ModuleSet, CallError> {
        let mut set = ModuleSet::default();
        for name in names {
            let (module, imports) = self.module(name)?;
            for import in imports.0 {
                set.add(import);
            }
            set.add(module);
        }
        Ok(set)
    }

    /// The limits for the next attempt: the time limit is the work's, less the time its earlier
    /// attempts took (the limit of one call, however many modules it finds on the way).
    fn remaining(&self) -> Result<Limits, CallError> {
        let spent = self.started.elapsed().as_millis() as u64;
        let time_ms = self.limits.time_ms.checked_sub(spent).filter(|left| *left > 0).ok_or(CallError::TimeLimit(self.limits.time_ms))?;
        Ok(Limits { time_ms, ..self.limits.clone() })
    }

    /// Runs `attempt` with the modules of `start`, and again with each module it misses added
    /// (read from the table and compiled), until it misses none; returns its result and the
    /// modules it was given. Each attempt gets the limits to run with: all attempts together
    /// have the time limit of one call.
    pub fn resolve<T>(
        &mut self,
        start: ModuleSet,
        mut attempt: impl FnMut(&ModuleSet, &Limits) -> Result<T, CallError>,
    ) -> Result<(T, ModuleSet), CallError> {
        let mut set = start;
        loop {
            match attempt(&set, &self.remaining()?) {
                // The limit it ran under was what was left of the work's: name the work's.
                Err(CallError::TimeLimit(_)) => return Err(CallError::TimeLimit(self.limits.time_ms)),
                Err(CallError::ModuleMissing(name)) => {
                    if set.contains(&name) {
                        return Err(CallError::Internal(format!("module '{name}' was given but not found")));
                    }
                    if let Some(at) = self.compiling.iter().position(|compiling| *compiling == name) {
                        let mut cycle = self.compiling[at..].to_vec();
                        cycle.push(name);
                        return Err(ModuleError::Cycle(cycle).into());
                    }
                    if set.len() >= MAX_MODULES {
                        return Err(ModuleError::TooMany(MAX_MODULES).into());
                    }
                    let (module, imports) = self.module(&name)?;
                    for import in imports.0 {
                        set.add(import);
                    }
                    set.add(module);
                }
                other => return other.map(|value| (value, set)),
            }
        }
    }

    /// Checks that `row` (about to be written to the table) compiles, with the modules it
    /// imports that the table holds; importing one it does not hold (yet) is allowed.
    pub fn check(&mut self, row: &ModuleRow) -> Result<(), CallError> {
        self.compiling.push(row.name.clone());
        let compiled = self.resolve(ModuleSet::default(), |imports, limits| compile(row, imports, limits));
        self.compiling.pop();
        match compiled {
            Ok(_) | Err(CallError::Module(ModuleError::NotFound(_))) => Ok(()),
            Err(error) => Err(named(&row.name, error)),
        }
    }

    /// Module `name` compiled from its current row, and the modules it imports if it had to be
    /// compiled now (else those are found when the importer misses them).
    fn module(&mut self, name: &str) -> Result<(Arc<CompiledModule>, ModuleSet), CallError> {
        let row = (self.read)(name)?.ok_or_else(|| ModuleError::NotFound(name.to_owned()))?;
        let key = (row.name.clone(), row.kind, Arc::clone(&row.source));
        if let Some(module) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok((module, ModuleSet::default()));
        }
        self.compiling.push(name.to_owned());
        let compiled = self.resolve(ModuleSet::default(), |imports, limits| compile(&row, imports, limits));
        self.compiling.pop();
        let (bytecode, imports) = compiled.map_err(|cause| named(name, cause))?;
        let size = row.source.len() + bytecode.len();
        let module = Arc::new(CompiledModule { row, bytecode });
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key, Arc::clone(&module), size);
        Ok((module, imports))
    }
}

/// `cause`, attributed to module `name` unless it is about a module already.
fn named(name: &str, cause: CallError) -> CallError {
    match cause {
        CallError::Module(error) => CallError::Module(error),
        // The guest's messages give the module by its position already; the time limit is the
        // whole work's.
        cause @ (CallError::Exception(_) | CallError::TimeLimit(_) | CallError::Interrupted) => cause,
        cause => ModuleError::Named { name: name.to_owned(), cause: Box::new(cause) }.into(),
    }
}

/// Compiles `row` in a throwaway sandbox given `imports`.
fn compile(row: &ModuleRow, imports: &ModuleSet, limits: &Limits) -> Result<Vec<u8>, CallError> {
    let mut sandbox = Sandbox::new(limits)?;
    sandbox.give_modules(imports)?;
    sandbox.run(|guest, store| {
        guest.module_compile(store, &row.name, row.source.as_bytes(), row.kind, |bytes| bytecode_response(bytes, limits.memory_mib))
    })
}

impl Sandbox {
    /// Gives this sandbox `modules` to import (before anything that imports them runs).
    pub fn give_modules(&mut self, modules: &ModuleSet) -> Result<(), CallError> {
        if modules.is_empty() {
            return Ok(());
        }
        let encoded = modules.encode();
        let memory_mib = self.limits().memory_mib;
        self.run(|guest, store| guest.modules_add(store, &encoded, |bytes| response_to_value(bytes, memory_mib)).map(|r| r.map(drop)))
    }
}
