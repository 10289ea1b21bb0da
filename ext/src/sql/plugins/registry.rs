//! A connection's view of its plugins, and its caches: each plugin's row as last checked against
//! the database ([`Snapshot`]), compiled plugins by exact source, and the kept worlds of scalar
//! plugins (least recently used first out).
//!
//! The registry never runs SQL: callers read rows first ([`super::rows`]), without holding its
//! lock, and hand them in. So nothing that SQL can call back into ever waits on this lock.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jsbox_abi::fnv::FnvBuildHasher;
use jsbox_abi::PluginKind;

use super::rows::Row;
use crate::error::{CallError, PluginError, RowProblem};
use crate::plugin::{self, CompiledPlugin, World};
use crate::sandbox::Limits;

/// What the database held when a plugin's row was last read: the main database's data version
/// and this connection's own-change epoch (see [`super::changes`]). Two equal snapshots mean the
/// same content of `js_plugins`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub data_version: u32,
    pub own_epoch: i64,
}

/// What a plugin's SQL function was registered as on this connection. SQLite cannot redefine a
/// function while a statement runs, so this stays as registered for the connection's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    /// A function for a row whose kind is unusable: it reports the row's problem.
    Broken,
    As(PluginKind),
}

impl Registered {
    pub fn as_str(self) -> &'static str {
        match self {
            Registered::Broken => "scalar",
            Registered::As(kind) => kind.as_str(),
        }
    }
}

/// A plugin as the registry knows it.
struct Entry {
    checked: Snapshot,
    /// `None`: no row of that name.
    row: Option<Result<Row, RowProblem>>,
    compiled: Option<Arc<CompiledPlugin>>,
}

/// Scalar plugins' worlds kept per connection at most (each holds a sandbox and its memory).
const KEPT_WORLDS: usize = 16;

/// Source plus bytecode bytes of compiled plugins kept beyond those in use.
const COMPILED_CACHE_BYTES: usize = 32 << 20;

#[derive(Default)]
pub struct Registry {
    entries: HashMap<String, Entry, FnvBuildHasher>,
    /// Compiled plugins by kind and exact source: a re-inserted or reverted source is not
    /// compiled again. Bounded by bytes; when full it starts over (entries keep theirs).
    compiled: HashMap<(PluginKind, Arc<str>), Arc<CompiledPlugin>>,
    compiled_bytes: usize,
    /// The SQL functions this connection registered for plugins, by name as registered...
    registered: HashMap<String, Registered, FnvBuildHasher>,
    /// ...and lower-cased, as SQLite compares function names.
    registered_lower: HashSet<String>,
    /// The connection's other SQL functions (built-in, the application's), lower-cased.
    foreign: Option<Arc<HashSet<String>>>,
    worlds: HashMap<String, KeptWorld, FnvBuildHasher>,
    /// Bumped at every use of a kept world: the least recently used is evicted first.
    clock: u64,
}

struct KeptWorld {
    compiled: Arc<CompiledPlugin>,
    last_used: u64,
    world: World,
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

impl Registry {
    /// Whether `name`'s entry was checked at `snapshot`.
    pub fn is_current(&self, name: &str, snapshot: Snapshot) -> bool {
        self.entries.get(name).is_some_and(|entry| entry.checked == snapshot)
    }

    /// Records `name`'s row as read at `snapshot`. A kept world survives only if the source is
    /// unchanged.
    pub fn update(&mut self, name: &str, snapshot: Snapshot, row: Option<Result<Row, RowProblem>>) {
        if let Some(entry) = self.entries.get_mut(name) {
            entry.checked = snapshot;
            if entry.row != row {
                entry.row = row;
                entry.compiled = None;
                self.worlds.remove(name);
            }
            return;
        }
        if row.is_none() {
            self.worlds.remove(name);
        }
        self.entries.insert(name.to_owned(), Entry { checked: snapshot, row, compiled: None });
    }

    /// Forgets every entry not in `names` (after a full read) and their worlds.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.entries.retain(|name, _| keep(name));
        self.worlds.retain(|name, _| keep(name));
    }

    pub fn registered(&self, name: &str) -> Option<Registered> {
        self.registered.get(name).copied()
    }

    pub fn set_registered(&mut self, name: &str, registered: Registered) {
        self.registered.insert(name.to_owned(), registered);
        self.registered_lower.insert(name.to_ascii_lowercase());
    }

    /// Whether a plugin function of this name, in any case, is registered.
    pub fn is_registered_lower(&self, lower_name: &str) -> bool {
        self.registered_lower.contains(lower_name)
    }

    pub fn foreign_functions(&self) -> Option<Arc<HashSet<String>>> {
        self.foreign.clone()
    }

    pub fn set_foreign_functions(&mut self, names: Arc<HashSet<String>>) {
        self.foreign = Some(names);
    }

    /// The compiled current version of plugin `name` for `usage` with `argc` arguments, checked
    /// against the row and against what its SQL function was registered as (`registered`: called
    /// through that function rather than `js_call`/`js_agg`). `limits` are asked for only when
    /// the plugin must be compiled.
    pub fn plugin(
        &mut self,
        name: &str,
        usage: Use,
        argc: Option<usize>,
        registered: Option<Registered>,
        limits: &dyn Fn() -> Limits,
    ) -> Result<Arc<CompiledPlugin>, CallError> {
        let entry = self.entries.get_mut(name).ok_or_else(|| PluginError::NotFound(name.to_owned()))?;
        let row = match &entry.row {
            None => return Err(PluginError::NotFound(name.to_owned()).into()),
            Some(Err(problem)) => return Err(PluginError::Row(problem.clone()).into()),
            Some(Ok(row)) => row,
        };
        if let Some(Registered::As(as_kind)) = registered {
            // Registered as an aggregate, a window plugin still works (as an aggregate).
            let serves = as_kind == row.kind || (as_kind == PluginKind::Aggregate && row.kind == PluginKind::Window);
            if !serves {
                return Err(kind_changed(name, as_kind, row.kind).into());
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
        if let Some(compiled) = &entry.compiled {
            return Ok(Arc::clone(compiled));
        }
        let (kind, source) = (row.kind, Arc::clone(&row.source));
        let compiled = Self::compile_cached(&mut self.compiled, &mut self.compiled_bytes, kind, source, &limits())?;
        if let Some(entry) = self.entries.get_mut(name) {
            entry.compiled = Some(Arc::clone(&compiled));
        }
        Ok(compiled)
    }

    /// Compiles `source` as a plugin of `kind`, or finds it compiled already.
    pub fn compile(&mut self, kind: PluginKind, source: Arc<str>, limits: &Limits) -> Result<Arc<CompiledPlugin>, CallError> {
        Self::compile_cached(&mut self.compiled, &mut self.compiled_bytes, kind, source, limits)
    }

    fn compile_cached(
        cache: &mut HashMap<(PluginKind, Arc<str>), Arc<CompiledPlugin>>,
        bytes: &mut usize,
        kind: PluginKind,
        source: Arc<str>,
        limits: &Limits,
    ) -> Result<Arc<CompiledPlugin>, CallError> {
        let key = (kind, source);
        if let Some(compiled) = cache.get(&key) {
            return Ok(Arc::clone(compiled));
        }
        let compiled = Arc::new(plugin::compile(kind, &key.1, limits)?);
        let size = key.1.len() + compiled.bytecode_len();
        if *bytes + size > COMPILED_CACHE_BYTES {
            cache.clear();
            *bytes = 0;
        }
        if size <= COMPILED_CACHE_BYTES {
            *bytes += size;
            cache.insert(key, Arc::clone(&compiled));
        }
        Ok(compiled)
    }

    /// The kept world of scalar plugin `name` for `compiled`, (re)created if it was made from
    /// another version. When the connection's budget refuses a new world, the other kept worlds
    /// are given back and it is tried once more.
    pub fn scalar_world(&mut self, name: &str, compiled: &Arc<CompiledPlugin>, limits: &dyn Fn() -> Limits) -> Result<&mut World, CallError> {
        self.clock += 1;
        let current = self.worlds.get(name).is_some_and(|kept| Arc::ptr_eq(&kept.compiled, compiled));
        if !current {
            self.worlds.remove(name);
            while self.worlds.len() >= KEPT_WORLDS {
                self.evict_least_recently_used();
            }
            let limits = limits();
            let world = match World::new(compiled, &limits) {
                Err(e) if e.is_budget() && !self.worlds.is_empty() => {
                    self.worlds.clear();
                    World::new(compiled, &limits)?
                }
                other => other?,
            };
            let kept = KeptWorld { compiled: Arc::clone(compiled), last_used: 0, world };
            self.worlds.insert(name.to_owned(), kept);
        }
        let kept = self.worlds.get_mut(name).expect("kept above");
        kept.last_used = self.clock;
        Ok(&mut kept.world)
    }

    fn evict_least_recently_used(&mut self) {
        let oldest = self.worlds.iter().min_by_key(|(_, kept)| kept.last_used).map(|(name, _)| name.clone());
        if let Some(name) = oldest {
            self.worlds.remove(&name);
        }
    }

    /// Drops `name`'s kept world (after an error, or when the plugin is deleted).
    pub fn forget_world(&mut self, name: &str) {
        self.worlds.remove(name);
    }

    /// Drops every kept world (after the limits changed).
    pub fn forget_worlds(&mut self) {
        self.worlds.clear();
    }

    pub fn registered_count(&self) -> usize {
        self.registered.len()
    }

    pub fn kept_worlds(&self) -> usize {
        self.worlds.len()
    }

    pub fn compiled_cached(&self) -> usize {
        self.compiled.len()
    }
}

fn kind_changed(name: &str, registered: PluginKind, now: PluginKind) -> PluginError {
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
