//! Plugins stored in the `js_plugins` table, as SQL functions.
//!
//! Each row becomes a SQL function named after the plugin, registered once per connection; the
//! function looks up the plugin's current source on every call (cheaply: the table is re-read
//! only when the database's data version or this connection's change counter moved), so edits
//! take effect without re-registering. Compiled plugins are cached per connection by a hash of
//! kind and source. Temporary triggers (per connection, not in the database file) tell the
//! registry about rows this connection inserts, updates or deletes, so a plugin inserted is
//! callable at once.
//!
//! SQL surface: `js_plugins_init()`, `js_plugins_reload()`, `js_call(name, ...)`,
//! `js_agg(name, ...)`, and one function per plugin.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use jsbox_abi::fnv::FnvBuildHasher;
use jsbox_abi::{PluginKind, PluginOp};
use rusqlite::functions::{Aggregate, Context, FunctionFlags, WindowAggregate};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{ffi, Connection, OptionalExtension};

use super::Session;
use crate::error::CallError;
use crate::plugin::{self, CompiledPlugin, World};

/// The schema of `js_plugins` (also in `sql/schema.sql`, which is this very file).
pub const SCHEMA: &str = include_str!("../../../sql/schema.sql");

/// Per-connection temporary triggers that report this connection's changes to the registry.
const TRIGGERS: &str = "
CREATE TEMP TRIGGER IF NOT EXISTS js_plugins_inserted AFTER INSERT ON main.js_plugins
  BEGIN SELECT js_plugins_changed(NEW.name); END;
CREATE TEMP TRIGGER IF NOT EXISTS js_plugins_updated AFTER UPDATE OF name, kind, source, n_args ON main.js_plugins
  BEGIN SELECT js_plugins_changed(NEW.name); END;
CREATE TEMP TRIGGER IF NOT EXISTS js_plugins_deleted AFTER DELETE ON main.js_plugins
  BEGIN SELECT js_plugins_changed(NULL); END;
";

/// One row of `js_plugins`.
#[derive(Debug, Clone)]
struct Row {
    kind: PluginKind,
    source: Arc<str>,
    /// `plugin::source_hash(kind, source)`, computed once when the row is read.
    hash: u64,
    n_args: i32,
}

/// A connection's view of its plugins.
#[derive(Default)]
pub struct Registry {
    rows: HashMap<String, Row>,
    /// Compiled plugins by source hash (kind and source).
    compiled: HashMap<u64, Arc<CompiledPlugin>>,
    /// The SQL functions registered on the connection: name → (kind, n_args).
    registered: HashMap<String, (PluginKind, i32)>,
    /// Scalar plugins keep one JS world per connection, recreated when the source changes or
    /// after an error.
    scalar_worlds: HashMap<String, ScalarWorld, FnvBuildHasher>,
    /// (change counter, data version) when `rows` was read.
    seen: Option<(u64, u32)>,
    /// Bumped whenever `rows` is re-read: a scalar world checked in the current generation
    /// needs no look at `rows` or `compiled` (the per-row path of scalar plugins).
    generation: u64,
}

/// A scalar plugin's kept world.
struct ScalarWorld {
    /// The source hash the world was loaded from.
    source_hash: u64,
    /// The registry generation in which the world was last found current.
    generation: u64,
    world: World,
}

impl Registry {
    /// Drops the kept scalar worlds (after the limits changed).
    pub fn forget_worlds(&mut self) {
        self.scalar_worlds.clear();
    }

    /// Re-reads `js_plugins` if anything may have changed since the last read.
    fn refresh(&mut self, db: Db, session: &Session) -> Result<(), CallError> {
        let seen = (session.plugin_changes.load(Ordering::Acquire), data_version(db));
        if self.seen == Some(seen) {
            return Ok(());
        }
        self.rows = read_rows(&db.connection())?;
        self.seen = Some(seen);
        self.generation += 1;
        Ok(())
    }

    /// The kept world of scalar plugin `name`, (re)created if its source changed. Called after
    /// `refresh`.
    fn scalar_world(&mut self, name: &str, session: &Session) -> Result<&mut World, CallError> {
        let generation = self.generation;
        let current = self.scalar_worlds.get(name).is_some_and(|kept| kept.generation == generation);
        if !current {
            let compiled = self.compiled(name, Some(PluginKind::Scalar), session)?;
            match self.scalar_worlds.get_mut(name) {
                Some(kept) if kept.source_hash == compiled.source_hash => kept.generation = generation,
                _ => {
                    let world = World::new(&compiled, session.limits())?;
                    let kept = ScalarWorld { source_hash: compiled.source_hash, generation, world };
                    self.scalar_worlds.insert(name.to_owned(), kept);
                }
            }
        }
        Ok(&mut self.scalar_worlds.get_mut(name).expect("kept above").world)
    }

    /// The compiled current version of plugin `name`, checked to be usable as `want`.
    fn compiled(&mut self, name: &str, want: Option<PluginKind>, session: &Session) -> Result<Arc<CompiledPlugin>, CallError> {
        let row = self
            .rows
            .get(name)
            .ok_or_else(|| CallError::Plugin(format!("no plugin named {name} in js_plugins (deleted?)")))?;
        if let Some(want) = want {
            let compatible = row.kind == want || (want == PluginKind::Aggregate && row.kind == PluginKind::Window);
            if !compatible {
                return Err(CallError::Plugin(format!(
                    "{name} is a {} plugin, not {}; if its kind changed, run js_plugins_reload()",
                    row.kind.as_str(),
                    want.as_str()
                )));
            }
        }
        let hash = row.hash;
        if let Some(compiled) = self.compiled.get(&hash) {
            return Ok(Arc::clone(compiled));
        }
        let compiled = Arc::new(plugin::compile(row.kind, &row.source, session.limits())?);
        self.compiled.insert(hash, Arc::clone(&compiled));
        Ok(compiled)
    }
}

/// A connection handle captured when a function is registered on it. SQLite calls a function
/// only on the connection it was registered with, and destroys it before closing that
/// connection, so the handle is valid whenever the function runs; keeping it spares each call
/// `Context::get_connection`, which builds a `Connection` wrapper (and its statement cache).
#[derive(Clone, Copy)]
struct Db(*mut ffi::sqlite3);

// SAFETY: only used on the thread SQLite calls the function on, under SQLite's own locking.
unsafe impl Send for Db {}

impl Db {
    fn of(conn: &Connection) -> Self {
        // SAFETY: the handle is only read, never closed, through `Db`.
        Db(unsafe { conn.handle() })
    }

    /// A non-owning `Connection` for running SQL (never closes the handle).
    fn connection(self) -> Connection {
        // SAFETY: a live handle (see above); `from_handle` does not take ownership.
        unsafe { Connection::from_handle(self.0) }.expect("a non-null connection handle")
    }
}

/// A number that changes whenever the main database's content changes, through this connection
/// or another: `SQLITE_FCNTL_DATA_VERSION`, one C call and no SQL. The pager refreshes that
/// number when a transaction starts; in a statement that has not read the database (no
/// transaction open), ask `PRAGMA data_version`, which opens one to look.
fn data_version(db: Db) -> u32 {
    // SAFETY: a valid connection handle and a NUL-terminated schema name.
    let txn = unsafe { ffi::sqlite3_txn_state(db.0, c"main".as_ptr()) };
    if txn == ffi::SQLITE_TXN_NONE {
        let pragma = db.connection().query_row("PRAGMA main.data_version", [], |r| r.get::<_, i64>(0));
        if let Ok(version) = pragma {
            // Offset so that it never collides with a pager version seen inside transactions.
            return (version as u32).wrapping_mul(2).wrapping_add(1);
        }
    }
    let mut version: u32 = 0;
    // SAFETY: a valid connection handle, a documented opcode and a u32 out-parameter. A null
    // schema name means "main" (sqlite3DbNameToBtree), without comparing names on every row.
    unsafe {
        ffi::sqlite3_file_control(db.0, std::ptr::null(), ffi::SQLITE_FCNTL_DATA_VERSION, (&mut version as *mut u32).cast());
    }
    version.wrapping_mul(2)
}

fn table_exists(conn: &Connection) -> Result<bool, CallError> {
    conn.query_row(
        "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'js_plugins'",
        [],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(sql_error)
}

fn read_rows(conn: &Connection) -> Result<HashMap<String, Row>, CallError> {
    if !table_exists(conn)? {
        return Ok(HashMap::new());
    }
    let mut stmt = conn
        .prepare_cached("SELECT name, kind, source, n_args FROM main.js_plugins")
        .map_err(sql_error)?;
    let rows = stmt
        .query_map([], |row| {
            // The shell's readfile() stores BLOBs: take the source as TEXT or BLOB.
            let source = match row.get_ref(2)? {
                ValueRef::Text(bytes) | ValueRef::Blob(bytes) => String::from_utf8(bytes.to_vec()),
                _ => Ok(String::new()),
            };
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, source, row.get::<_, Option<i32>>(3)?))
        })
        .map_err(sql_error)?;
    let mut plugins = HashMap::new();
    for row in rows {
        let (name, kind, source, n_args) = row.map_err(sql_error)?;
        let source = source.map_err(|e| CallError::InvalidUtf8 { what: "the plugin source".into(), offset: e.utf8_error().valid_up_to() })?;
        let kind = PluginKind::parse(&kind)
            .ok_or_else(|| CallError::Plugin(format!("{name}: unknown kind {kind:?}")))?;
        let hash = plugin::source_hash(kind, &source);
        plugins.insert(name, Row { kind, source: source.into(), hash, n_args: n_args.unwrap_or(-1) });
    }
    Ok(plugins)
}

fn sql_error(e: rusqlite::Error) -> CallError {
    CallError::Plugin(format!("reading js_plugins: {e}"))
}

/// Checks that `name` can be a SQL function of its own.
fn validate_name(conn: &Connection, name: &str, registry: &Registry) -> Result<(), CallError> {
    let mut chars = name.chars();
    let identifier = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !identifier {
        return Err(CallError::Plugin(format!("plugin name {name:?} is not an identifier (letters, digits, _)")));
    }
    if name.to_ascii_lowercase().starts_with("js_") {
        return Err(CallError::Plugin(format!("plugin name {name} is reserved: js_ names belong to jsbox")));
    }
    if registry.registered.contains_key(name) {
        return Ok(());
    }
    // pragma_function_list exists in SQLite 3.30 and later; where it does not, nothing is known.
    let builtin = conn
        .query_row("SELECT 1 FROM pragma_function_list WHERE name = lower(?1) LIMIT 1", [name], |_| Ok(()))
        .optional()
        .unwrap_or(None)
        .is_some();
    if builtin {
        return Err(CallError::Plugin(format!(
            "plugin name {name} would shadow the SQL function {name}(); choose another name"
        )));
    }
    Ok(())
}

/// Registers `js_plugins_init`, `js_plugins_reload`, `js_plugins_changed`, `js_call`, `js_agg`,
/// and, when `js_plugins` exists, every plugin in it.
pub fn register(db: &Connection, session: &Arc<Session>) -> rusqlite::Result<()> {
    let utf8 = FunctionFlags::SQLITE_UTF8;
    for (name, create) in [("js_plugins_init", true), ("js_plugins_reload", false)] {
        let session = Arc::clone(session);
        db.create_scalar_function(name, 0, utf8 | FunctionFlags::SQLITE_DIRECTONLY, move |ctx| {
            let conn = unsafe { ctx.get_connection()? };
            sync(&conn, &session, create, Check::Strict).map_err(|e| e.in_function(name))
        })?;
    }
    let changed = Arc::clone(session);
    db.create_scalar_function("js_plugins_changed", 1, utf8 | FunctionFlags::SQLITE_DIRECTONLY, move |ctx| {
        let conn = unsafe { ctx.get_connection()? };
        let name: Option<String> = ctx.get(0)?;
        plugin_changed(&conn, &changed, name.as_deref()).map_err(|e| e.in_function("js_plugins"))
    })?;
    let call = Arc::clone(session);
    let handle = Db::of(db);
    db.create_scalar_function("js_call", -1, utf8, move |ctx| {
        let name = plugin_name_argument(ctx).map_err(|e| e.in_function("js_call"))?;
        call_scalar(&call, handle, ctx, &name, 1).map_err(|e| e.in_function(&name))
    })?;
    db.create_aggregate_function("js_agg", -1, utf8, PluginAggregate { session: Arc::clone(session), name: None })?;
    if table_exists(db).unwrap_or(false) {
        // Loading never fails because of a stored plugin: a broken or misnamed one reports its
        // error when called, or from js_plugins_reload().
        let _ = sync(db, session, false, Check::Lenient);
    }
    Ok(())
}

/// How `sync` treats a plugin it cannot register or compile.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Skip it (at load time), without compiling anything.
    Lenient,
    /// Compile every plugin and report the first that fails.
    Strict,
}

/// Reads `js_plugins` (creating it first if `create`), installs the triggers, and registers a
/// SQL function per plugin. Returns the number of plugins.
fn sync(conn: &Connection, session: &Arc<Session>, create: bool, check: Check) -> Result<i64, CallError> {
    if create {
        conn.execute_batch(SCHEMA).map_err(|e| CallError::Plugin(format!("creating js_plugins: {e}")))?;
    }
    if !table_exists(conn)? {
        return Err(CallError::Plugin("there is no js_plugins table; js_plugins_init() creates it".into()));
    }
    conn.execute_batch(TRIGGERS).map_err(|e| CallError::Plugin(format!("installing triggers: {e}")))?;
    session.plugin_changes.fetch_add(1, Ordering::AcqRel);
    let mut registry = session.registry();
    registry.refresh(Db::of(conn), session)?;
    let mut names: Vec<String> = registry.rows.keys().cloned().collect();
    names.sort();
    for name in &names {
        let registered = register_plugin(conn, session, &mut registry, name);
        if check == Check::Lenient {
            continue;
        }
        registered
            .and_then(|()| registry.compiled(name, None, session).map(drop))
            .map_err(|e| CallError::Plugin(format!("{name}: {e}")))?;
    }
    Ok(names.len() as i64)
}

/// The temporary triggers' hook: a row of `js_plugins` was inserted or updated (`name`) or
/// deleted (NULL). A new or changed plugin is checked and compiled now, so that a broken one
/// fails the statement that stores it.
fn plugin_changed(conn: &Connection, session: &Arc<Session>, name: Option<&str>) -> Result<SqlValue, CallError> {
    session.plugin_changes.fetch_add(1, Ordering::AcqRel);
    let Some(name) = name else { return Ok(SqlValue::Null) };
    let mut registry = session.registry();
    registry.refresh(Db::of(conn), session)?;
    let result = register_plugin(conn, session, &mut registry, name)
        .and_then(|()| registry.compiled(name, None, session).map(drop));
    result.map_err(|e| CallError::Plugin(format!("{name}: {e}")))?;
    Ok(SqlValue::Null)
}

/// Registers plugin `name` as a SQL function unless it already is, with the same kind and
/// argument count.
fn register_plugin(conn: &Connection, session: &Arc<Session>, registry: &mut Registry, name: &str) -> Result<(), CallError> {
    let row = registry.rows.get(name).cloned().ok_or_else(|| CallError::Plugin("no such plugin".into()))?;
    if registry.registered.get(name) == Some(&(row.kind, row.n_args)) {
        return Ok(());
    }
    validate_name(conn, name, registry)?;
    let flags = FunctionFlags::SQLITE_UTF8;
    let result = match row.kind {
        PluginKind::Scalar => {
            let session = Arc::clone(session);
            let fn_name = name.to_owned();
            let db = Db::of(conn);
            conn.create_scalar_function(name, row.n_args, flags, move |ctx| {
                call_scalar(&session, db, ctx, &fn_name, 0).map_err(|e| e.in_function(&fn_name))
            })
        }
        PluginKind::Aggregate => conn.create_aggregate_function(
            name,
            row.n_args,
            flags,
            PluginAggregate { session: Arc::clone(session), name: Some(name.to_owned()) },
        ),
        PluginKind::Window => conn.create_window_function(
            name,
            row.n_args,
            flags,
            PluginAggregate { session: Arc::clone(session), name: Some(name.to_owned()) },
        ),
    };
    result.map_err(|e| {
        CallError::Plugin(format!(
            "cannot register it as a {} function now ({e}); run js_plugins_reload() when no statement is running",
            row.kind.as_str()
        ))
    })?;
    registry.registered.insert(name.to_owned(), (row.kind, row.n_args));
    Ok(())
}

/// The first argument of `js_call` / `js_agg`: the plugin's name.
fn plugin_name_argument(ctx: &Context<'_>) -> Result<String, CallError> {
    match ctx.get_raw(0) {
        ValueRef::Text(name) => Ok(String::from_utf8_lossy(name).into_owned()),
        other => Err(CallError::ArgumentType {
            what: "the plugin name",
            expected: "TEXT",
            got: super::args::type_name(other),
        }),
    }
}

fn arguments<'a>(ctx: &'a Context<'_>, skip: usize) -> impl ExactSizeIterator<Item = ValueRef<'a>> {
    (skip..ctx.len()).map(|i| ctx.get_raw(i))
}

/// A scalar plugin call, in the connection's world for that plugin.
fn call_scalar(session: &Session, db: Db, ctx: &Context<'_>, name: &str, skip: usize) -> Result<SqlValue, CallError> {
    let mut registry = session.registry();
    registry.refresh(db, session)?;
    let result = registry.scalar_world(name, session)?.main(arguments(ctx, skip));
    if result.is_err() {
        // After an error or a limit, the next call starts from a fresh world.
        registry.scalar_worlds.remove(name);
    }
    result
}

/// Aggregate and window plugins (and `js_agg`, when `name` is `None`).
struct PluginAggregate {
    session: Arc<Session>,
    name: Option<String>,
}

/// One group's sandbox.
struct Group {
    name: String,
    world: AssertUnwindSafe<World>,
}

impl PluginAggregate {
    /// A fresh world with the plugin loaded and `init()` run.
    fn start(&self, conn: &Connection, name: &str) -> Result<World, CallError> {
        let compiled = {
            let mut registry = self.session.registry();
            registry.refresh(Db::of(conn), &self.session)?;
            registry.compiled(name, Some(PluginKind::Aggregate), &self.session)?
        };
        let mut world = World::new(&compiled, self.session.limits())?;
        world.init()?;
        Ok(world)
    }

    fn skip(&self) -> usize {
        usize::from(self.name.is_none())
    }
}

impl Aggregate<Group, SqlValue> for PluginAggregate {
    fn init(&self, ctx: &mut Context<'_>) -> rusqlite::Result<Group> {
        let name = match &self.name {
            Some(name) => name.clone(),
            None => plugin_name_argument(ctx).map_err(|e| e.in_function("js_agg"))?,
        };
        let conn = unsafe { ctx.get_connection()? };
        let world = self.start(&conn, &name).map_err(|e| e.in_function(&name))?;
        Ok(Group { name, world: AssertUnwindSafe(world) })
    }

    fn step(&self, ctx: &mut Context<'_>, group: &mut Group) -> rusqlite::Result<()> {
        group.world.step(arguments(ctx, self.skip())).map_err(|e| e.in_function(&group.name))
    }

    fn finalize(&self, ctx: &mut Context<'_>, group: Option<Group>) -> rusqlite::Result<SqlValue> {
        match group {
            Some(mut group) => group.world.finish(PluginOp::Final).map_err(|e| e.in_function(&group.name)),
            // An empty group: final(init()) in a fresh world (js_agg cannot know which plugin).
            None => match &self.name {
                None => Ok(SqlValue::Null),
                Some(name) => {
                    let conn = unsafe { ctx.get_connection()? };
                    self.start(&conn, name)
                        .and_then(|mut world| world.finish(PluginOp::Final))
                        .map_err(|e| e.in_function(name))
                }
            },
        }
    }
}

impl WindowAggregate<Group, SqlValue> for PluginAggregate {
    fn value(&self, group: Option<&mut Group>) -> rusqlite::Result<SqlValue> {
        match group {
            Some(group) => group.world.finish(PluginOp::Value).map_err(|e| e.in_function(&group.name)),
            None => Ok(SqlValue::Null),
        }
    }

    fn inverse(&self, ctx: &mut Context<'_>, group: &mut Group) -> rusqlite::Result<()> {
        group.world.inverse(arguments(ctx, self.skip())).map_err(|e| e.in_function(&group.name))
    }
}

impl Session {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.plugins.lock().unwrap_or_else(|e| e.into_inner())
    }
}
