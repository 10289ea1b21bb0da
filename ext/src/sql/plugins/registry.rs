//! A connection's view of its plugins, and its caches: each plugin's row as last checked against
//! the database ([`Snapshot`]) with its compiled form and, for a scalar plugin, its kept world;
//! and compiled plugins by exact source.
//!
//! Everything here is bounded: kept worlds by count (least recently used out) and by memory
//! (together at most half the connection's budget, so that calls and groups always have room),
//! entries by the bytes of source and bytecode they hold (least recently used out: a plugin
//! whose entry was dropped is read and compiled again at its next call), the compiled cache by
//! bytes.
//!
//! The registry never runs SQL: callers read rows first ([`super::rows`]), without holding its
//! lock, and hand them in. So nothing that SQL can call back into ever waits on this lock.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jsbox_abi::fnv::FnvBuildHasher;
use jsbox_abi::PluginKind;
use rusqlite::types::{Value as SqlValue, ValueRef};

use super::rows::Row;
use crate::bounded_cache::BoundedCache;
use crate::budget::KeptSandbox;
use crate::error::{CallError, PluginError, RowProblem};
use crate::modules::ModuleSet;
use crate::plugin::{CompiledPlugin, World};
use crate::sandbox::Limits;

/// Compiles a plugin's source of a kind (with the modules it imports), for the registry.
pub type Compile<'a> = &'a dyn Fn(PluginKind, &str) -> Result<CompiledPlugin, CallError>;

/// What the database held when a plugin's row was last read: the main database's data version
/// and this connection's own-change epoch (see [`super::changes`]). Two equal snapshots mean the
/// same content of `js_plugins`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub data_version: u64,
    pub own_epoch: i64,
}

/// What a plugin's SQL function was registered as on this connection. SQLite cannot redefine a
/// function while a statement runs, so this stays as registered for the connection's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    /// A scalar function for a row whose kind was unusable: it reports the row's problem.
    Broken,
    As(PluginKind),
}

impl Registered {
    /// The kind of SQL function SQLite has for it.
    fn kind(self) -> PluginKind {
        match self {
            Registered::Broken => PluginKind::Scalar,
            Registered::As(kind) => kind,
        }
    }

    /// Whether a plugin of `kind` can run through this function.
    pub fn serves(self, kind: PluginKind) -> bool {
        // Registered as an aggregate, a window plugin still works (as an aggregate).
        self.kind() == kind || (self.kind() == PluginKind::Aggregate && kind == PluginKind::Window)
    }
}

/// How a plugin is about to be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// Only checked (js_plugins_reload()).
    Any,
    Scalar,
    Aggregate,
    Window,
}

impl Use {
    fn as_str(self) -> &'static str {
        match self {
            Use::Any => "any",
            Use::Scalar => "scalar",
            Use::Aggregate => "aggregate",
            Use::Window => "window",
        }
    }

    /// Whether a plugin of `kind` can serve this use.
    fn accepts(self, kind: PluginKind) -> bool {
        matches!(
            (self, kind),
            (Use::Any, _)
                | (Use::Scalar, PluginKind::Scalar)
                | (Use::Aggregate, PluginKind::Aggregate | PluginKind::Window)
                | (Use::Window, PluginKind::Window)
        )
    }
}

/// A plugin as the registry knows it.
struct Entry {
    checked: Snapshot,
    /// `None`: no row of that name.
    row: Option<Result<Row, RowProblem>>,
    compiled: Option<Arc<CompiledPlugin>>,
    /// A scalar plugin's world, kept across calls.
    world: Option<KeptWorld>,
    /// What the plugin wrote with `console.*` in its last call (scalar) or group.
    console: String,
    last_used: u64,
}

struct KeptWorld {
    world: World,
    /// Its memory when last measured.
    memory_bytes: u64,
    /// Its place among the worlds the process keeps.
    _kept: KeptSandbox,
}

impl Entry {
    /// Source and bytecode bytes it holds.
    fn bytes(&self) -> usize {
        let source = match &self.row {
            Some(Ok(row)) => row.source.len(),
            _ => 0,
        };
        source + self.compiled.as_ref().map_or(0, |c| c.bytecode_len())
    }
}

/// Scalar plugins' worlds kept per connection at most (each holds a sandbox and its memory).
const KEPT_WORLDS: usize = 16;

/// Source plus bytecode bytes of compiled plugins kept in the cache beyond those in use...
const COMPILED_CACHE_BYTES: usize = 32 << 20;
/// ...and held by entries.
const ENTRY_BYTES: usize = 64 << 20;

#[derive(Default)]
pub struct Registry {
    entries: HashMap<String, Entry, FnvBuildHasher>,
    entry_bytes: usize,
    /// Compiled plugins by kind and exact source: a re-inserted or reverted source is not
    /// compiled again. Bounded by bytes; when full it starts over (entries keep theirs).
    compiled: BoundedCache<(PluginKind, Arc<str>), Arc<CompiledPlugin>, COMPILED_CACHE_BYTES>,
    /// The SQL functions this connection registered for plugins, by name as registered...
    registered: HashMap<String, Registered, FnvBuildHasher>,
    /// ...and by lower-cased name (SQLite ignores case in function names): the name registered.
    registered_lower: HashMap<String, String>,
    /// The plugin functions registered as `SQLITE_DETERMINISTIC` (whose rows must stay so).
    registered_deterministic: HashSet<String, FnvBuildHasher>,
    /// The connection's other SQL functions (built-in, the application's), lower-cased.
    foreign: Option<Arc<HashSet<String>>>,
    /// Bumped at every use of an entry: the least recently used goes first.
    clock: u64,
}

impl Registry {
    /// Whether `name`'s entry was checked at `snapshot`.
    pub fn is_current(&self, name: &str, snapshot: Snapshot) -> bool {
        self.entries.get(name).is_some_and(|entry| entry.checked == snapshot)
    }

    /// Records `name`'s row as read at `snapshot` (`None`: a moment that cannot be told again).
    /// Its compiled form and kept world survive only if the row is unchanged.
    pub fn update(&mut self, name: &str, snapshot: Option<Snapshot>, row: Option<Result<Row, RowProblem>>) {
        let snapshot = snapshot.unwrap_or(Snapshot { data_version: u64::MAX, own_epoch: i64::MIN });
        self.clock += 1;
        let clock = self.clock;
        let entry = self.entries.entry(name.to_owned()).or_insert_with(|| Entry {
            checked: snapshot,
            row: None,
            compiled: None,
            world: None,
            console: String::new(),
            last_used: clock,
        });
        self.entry_bytes -= entry.bytes();
        entry.checked = snapshot;
        entry.last_used = clock;
        if entry.row != row {
            entry.row = row;
            entry.compiled = None;
            entry.world = None;
        }
        self.entry_bytes += entry.bytes();
        self.trim_entries(name);
    }

    /// Forgets every entry `keep` refuses (after a full read), with its world.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.entries.retain(|name, _| keep(name));
        self.entry_bytes = self.entries.values().map(Entry::bytes).sum();
    }

    pub fn registered(&self, name: &str) -> Option<Registered> {
        self.registered.get(name).copied()
    }

    pub fn set_registered(&mut self, name: &str, registered: Registered, deterministic: bool) {
        self.registered.insert(name.to_owned(), registered);
        if deterministic {
            self.registered_deterministic.insert(name.to_owned());
        }
        self.registered_lower.insert(name.to_ascii_lowercase(), name.to_owned());
    }

    /// The plugin function registered under `name` in another case, if any.
    pub fn registered_in_other_case(&self, name: &str) -> Option<&str> {
        self.registered_lower.get(&name.to_ascii_lowercase()).map(String::as_str).filter(|other| *other != name)
    }

    pub fn foreign_functions(&self) -> Option<Arc<HashSet<String>>> {
        self.foreign.clone()
    }

    pub fn set_foreign_functions(&mut self, names: Arc<HashSet<String>>) {
        self.foreign = Some(names);
    }

    /// The compiled current version of plugin `name` for `usage` with `argc` arguments, checked
    /// against the row and against what its SQL function was registered as (`registered`: called
    /// through that function rather than `js_call`/`js_agg`). `compile` runs only when the plugin
    /// must be compiled.
    pub fn plugin(
        &mut self,
        name: &str,
        usage: Use,
        argc: Option<usize>,
        registered: Option<Registered>,
        compile: Compile<'_>,
    ) -> Result<Arc<CompiledPlugin>, CallError> {
        self.clock += 1;
        let promised = self.registered_deterministic.contains(name);
        let entry = self.entries.get_mut(name).ok_or_else(|| PluginError::NotFound(name.to_owned()))?;
        entry.last_used = self.clock;
        let row = check(name, entry, usage, argc, registered, promised)?;
        if let Some(compiled) = &entry.compiled {
            return Ok(Arc::clone(compiled));
        }
        let (kind, source) = (row.kind, Arc::clone(&row.source));
        let compiled = Self::compile_cached(&mut self.compiled, kind, source, compile)?;
        if let Some(entry) = self.entries.get_mut(name) {
            entry.compiled = Some(Arc::clone(&compiled));
            self.entry_bytes += compiled.bytecode_len();
        }
        self.trim_entries(name);
        Ok(compiled)
    }

    /// Compiles `source` as a plugin of `kind`, or finds it compiled already.
    pub fn compile(&mut self, kind: PluginKind, source: Arc<str>, compile: Compile<'_>) -> Result<Arc<CompiledPlugin>, CallError> {
        Self::compile_cached(&mut self.compiled, kind, source, compile)
    }

    fn compile_cached(
        cache: &mut BoundedCache<(PluginKind, Arc<str>), Arc<CompiledPlugin>, COMPILED_CACHE_BYTES>,
        kind: PluginKind,
        source: Arc<str>,
        compile: Compile<'_>,
    ) -> Result<Arc<CompiledPlugin>, CallError> {
        let key = (kind, source);
        if let Some(compiled) = cache.get(&key) {
            return Ok(compiled);
        }
        let compiled = Arc::new(compile(kind, &key.1)?);
        // A plugin that imports is not cached by its source alone: its modules may change while
        // it does not (its entry checks them, see `Plugins::refreshed`).
        if compiled.modules.is_empty() {
            let size = key.1.len() + compiled.bytecode_len();
            cache.insert(key, Arc::clone(&compiled), size);
        }
        Ok(compiled)
    }

    /// The per-row path of scalar plugins: if `name`'s entry was checked at `snapshot` and has
    /// its kept world, runs `main` on `args` there (one lookup); `None` if not, for the caller
    /// to bring the entry up to date and go the whole way ([`Registry::call_scalar`]).
    pub fn call_current<'a>(
        &mut self,
        name: &str,
        snapshot: Snapshot,
        args: impl ExactSizeIterator<Item = ValueRef<'a>> + Clone,
        registered: Option<Registered>,
    ) -> Option<Result<SqlValue, CallError>> {
        self.clock += 1;
        let promised = self.registered_deterministic.contains(name);
        let entry = self.entries.get_mut(name).filter(|entry| entry.checked == snapshot && entry.world.is_some())?;
        if let Err(e) = check(name, entry, Use::Scalar, Some(args.len()), registered, promised) {
            return Some(Err(e));
        }
        // The entry found is used as it is (one lookup per row, not two).
        let ran = run_in_kept_world(entry, self.clock, args);
        Some(self.trimmed_after(name, ran))
    }

    /// Runs scalar plugin `name`'s `main` on `args` in its kept world, (re)creating the world
    /// when there is none, then keeps the connection's kept worlds within their bounds. After
    /// an error the world is dropped: the next call starts from a fresh one.
    pub fn call_scalar<'a>(
        &mut self,
        name: &str,
        args: impl ExactSizeIterator<Item = ValueRef<'a>> + Clone,
        registered: Option<Registered>,
        limits: &dyn Fn() -> Limits,
        compile: Compile<'_>,
    ) -> Result<SqlValue, CallError> {
        self.clock += 1;
        let promised = self.registered_deterministic.contains(name);
        if let Some(entry) = self.entries.get_mut(name) {
            if entry.world.is_some() {
                check(name, entry, Use::Scalar, Some(args.len()), registered, promised)?;
                return self.run_kept(name, args);
            }
        }
        let compiled = self.plugin(name, Use::Scalar, Some(args.len()), registered, compile)?;
        let mut limits = limits();
        limits.deterministic |= self.runs_deterministically(name);
        // (Session::with_room would lock this registry again: the kept worlds are given back here.)
        let kept = self.kept_worlds() > 0;
        let world = crate::budget::with_room(
            || World::new(&compiled, &limits),
            |error| {
                self.forget_worlds();
                let parked = error.is_process_wide() && crate::parking::release_all();
                kept || parked
            },
        )?;
        while self.kept_worlds() >= KEPT_WORLDS {
            self.evict_least_recently_used_world(name);
        }
        // Where the process keeps as many worlds as it may, this connection gives up its own
        // least recently used ones first; if it has none, this call's world is not kept.
        let kept = loop {
            match KeptSandbox::take() {
                Some(kept) => break kept,
                None if self.evict_least_recently_used_world(name) => continue,
                None => return World::main(&mut { world }, args),
            }
        };
        if let Some(entry) = self.entries.get_mut(name) {
            entry.world = Some(KeptWorld { world, memory_bytes: 0, _kept: kept });
        }
        self.run_kept(name, args)
    }

    fn run_kept<'a>(&mut self, name: &str, args: impl ExactSizeIterator<Item = ValueRef<'a>> + Clone) -> Result<SqlValue, CallError> {
        let entry = self.entries.get_mut(name).expect("the caller found it");
        let ran = run_in_kept_world(entry, self.clock, args);
        self.trimmed_after(name, ran)
    }

    /// The result of [`run_in_kept_world`] for `name`, once the kept worlds are trimmed to what
    /// it says they may hold when its world grew.
    fn trimmed_after(&mut self, name: &str, (result, grown): (Result<SqlValue, CallError>, Option<u64>)) -> Result<SqlValue, CallError> {
        if let Some(bytes) = grown {
            self.trim_worlds(name, bytes);
        }
        result
    }

    /// Drops least recently used kept worlds (never `current`'s) until they hold at most `bytes`.
    fn trim_worlds(&mut self, current: &str, bytes: u64) {
        loop {
            let held: u64 = self.entries.values().filter_map(|e| e.world.as_ref()).map(|k| k.memory_bytes).sum();
            if held <= bytes || !self.evict_least_recently_used_world(current) {
                return;
            }
        }
    }

    /// Drops the least recently used kept world but `current`'s; false if there is none.
    fn evict_least_recently_used_world(&mut self, current: &str) -> bool {
        let oldest = self
            .entries
            .iter_mut()
            .filter(|(name, entry)| entry.world.is_some() && name.as_str() != current)
            .min_by_key(|(_, entry)| entry.last_used);
        match oldest {
            Some((_, entry)) => {
                entry.world = None;
                true
            }
            None => false,
        }
    }

    /// Drops least recently used entries (never `current`) while they hold too many bytes.
    fn trim_entries(&mut self, current: &str) {
        while self.entry_bytes > ENTRY_BYTES {
            let oldest = self
                .entries
                .iter()
                .filter(|(name, _)| name.as_str() != current)
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(name, _)| name.clone());
            let Some(name) = oldest else { return };
            if let Some(entry) = self.entries.remove(&name) {
                self.entry_bytes -= entry.bytes();
            }
        }
    }

    /// Records what plugin `name` wrote with `console.*` in a group that just ended.
    pub fn record_console(&mut self, name: &str, console: &str) {
        if let Some(entry) = self.entries.get_mut(name) {
            if !(console.is_empty() && entry.console.is_empty()) {
                entry.console = console.to_owned();
            }
        }
    }

    /// Each plugin's console output of its last call or group, where there is some.
    pub fn consoles(&self) -> Vec<(&str, &str)> {
        let mut consoles: Vec<(&str, &str)> = self
            .entries
            .iter()
            .filter(|(_, entry)| !entry.console.is_empty())
            .map(|(name, entry)| (name.as_str(), entry.console.as_str()))
            .collect();
        consoles.sort_unstable();
        consoles
    }

    /// Whether plugin `name`'s row (as last checked) asks to run deterministically.
    pub fn runs_deterministically(&self, name: &str) -> bool {
        matches!(self.entries.get(name).and_then(|entry| entry.row.as_ref()), Some(Ok(row)) if row.deterministic)
    }

    /// The modules plugin `name`'s compiled form imports (empty if it is not compiled).
    pub fn compiled_modules(&self, name: &str) -> ModuleSet {
        self.entries.get(name).and_then(|entry| entry.compiled.as_ref()).map(|compiled| compiled.modules.clone()).unwrap_or_default()
    }

    /// Forgets every compiled plugin, cached or in an entry, with its kept world (the limits
    /// changed: what compiled under the old ones may not under the new).
    pub fn forget_all_compiled(&mut self) {
        self.compiled = BoundedCache::default();
        for entry in self.entries.values_mut() {
            entry.compiled = None;
            entry.world = None;
        }
        self.entry_bytes = self.entries.values().map(Entry::bytes).sum();
    }

    /// Forgets plugin `name`'s compiled form and kept world (a module it imports changed).
    pub fn forget_compiled(&mut self, name: &str) {
        if let Some(entry) = self.entries.get_mut(name) {
            self.entry_bytes -= entry.bytes();
            entry.compiled = None;
            entry.world = None;
            self.entry_bytes += entry.bytes();
        }
    }

    /// Forgets plugin `name` (deleted or renamed), with its kept world.
    pub fn forget(&mut self, name: &str) {
        if let Some(entry) = self.entries.remove(name) {
            self.entry_bytes -= entry.bytes();
        }
    }

    /// Drops every kept and parked world (after the limits changed, or to make room in the
    /// budget).
    pub fn forget_worlds(&mut self) {
        for entry in self.entries.values_mut() {
            entry.world = None;
        }
    }

    pub fn registered_count(&self) -> usize {
        self.registered.len()
    }

    pub fn kept_worlds(&self) -> usize {
        self.entries.values().filter(|entry| entry.world.is_some()).count()
    }

    pub fn compiled_cached(&self) -> usize {
        self.compiled.len()
    }

    pub fn entries(&self) -> (usize, usize) {
        (self.entries.len(), self.entry_bytes)
    }
}

/// Runs `main` on `args` in `entry`'s kept world, which must exist; after an error the world is
/// dropped (the next call starts from a fresh one). Also returns, when the world's memory grew,
/// the bytes the connection's kept worlds may hold together, for the caller to trim them to.
fn run_in_kept_world<'a>(
    entry: &mut Entry,
    clock: u64,
    args: impl ExactSizeIterator<Item = ValueRef<'a>> + Clone,
) -> (Result<SqlValue, CallError>, Option<u64>) {
    entry.last_used = clock;
    let kept = entry.world.as_mut().expect("the caller made it");
    let result = kept.world.main(args);
    if !(kept.world.console().is_empty() && entry.console.is_empty()) {
        entry.console = kept.world.console().to_owned();
    }
    if result.is_err() {
        entry.world = None;
        return (result, None);
    }
    let memory_bytes = kept.world.memory_bytes();
    if memory_bytes <= kept.memory_bytes {
        return (result, None);
    }
    kept.memory_bytes = memory_bytes;
    (result, Some(kept.world.budget_bytes() / 2))
}

/// The row of `entry` if it can serve `usage` with `argc` arguments through a function
/// `registered` as such (`None`: through js_call/js_agg).
/// `promised`: its function was registered as `SQLITE_DETERMINISTIC`, which the row must still be.
fn check<'e>(
    name: &str,
    entry: &'e Entry,
    usage: Use,
    argc: Option<usize>,
    registered: Option<Registered>,
    promised: bool,
) -> Result<&'e Row, CallError> {
    let row = match &entry.row {
        None => return Err(PluginError::NotFound(name.to_owned()).into()),
        Some(Err(problem)) => return Err(PluginError::Row(problem.clone()).into()),
        Some(Ok(row)) => row,
    };
    if promised && !row.deterministic && registered.is_some() {
        return Err(PluginError::NoLongerDeterministic(name.to_owned()).into());
    }
    if let Some(registered) = registered {
        if !registered.serves(row.kind) {
            return Err(kind_changed(name, registered.kind(), row.kind).into());
        }
    }
    if !usage.accepts(row.kind) {
        return Err(PluginError::WrongKind { name: name.to_owned(), kind: row.kind.as_str(), want: usage.as_str() }.into());
    }
    if let Some(argc) = argc {
        if row.n_args >= 0 && row.n_args as usize != argc {
            return Err(PluginError::ArgumentCount { name: name.to_owned(), expected: row.n_args, got: argc }.into());
        }
    }
    Ok(row)
}

pub fn kind_changed(name: &str, registered: PluginKind, now: PluginKind) -> PluginError {
    PluginError::KindChanged {
        name: name.to_owned(),
        registered: registered.as_str(),
        now: now.as_str(),
        also: match now {
            PluginKind::Scalar => "; js_call() runs it as it is now",
            PluginKind::Aggregate | PluginKind::Window => "; js_agg() runs it as it is now",
        },
    }
}
