//! Plugins stored in the `js_plugins` table, as SQL functions.
//!
//! Each row becomes a SQL function named after the plugin, registered once per connection (with
//! any number of arguments: `n_args` is checked at each call, so changing it needs no new
//! registration). The function finds the plugin's current row at every call: the database is
//! the truth, and what runs is what it holds for the connection at that moment
//! ([`changes`]). The pieces, one job each:
//!
//! | module | job |
//! |---|---|
//! | [`rows`] | reading `js_plugins` as data, and what each row is (or why it cannot be a plugin) |
//! | [`changes`] | knowing when a row must be read again: commits, own edits, rollbacks |
//! | [`registry`] | the connection's plugins and caches: rows as checked, compiled plugins, kept worlds |
//! | [`aggregate`] | aggregate and window plugins as SQLite aggregate and window functions |
//! | this module | the SQL functions: `js_plugins_init()`, `js_plugins_reload()`, `js_call`, `js_agg`, the triggers' `js_plugins_changed`, and each plugin's own |
//!
//! Nothing here holds the registry's lock while SQL runs, and a jsbox function called while
//! jsbox reads `js_plugins` (re-entry, through whatever the database put in the way) fails.

mod aggregate;
mod changes;
mod registry;
mod rows;
mod schema_users;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use jsbox_abi::PluginKind;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::Connection;

use self::aggregate::PluginAggregate;
pub use self::changes::OwnChanges;
pub use self::registry::Registry;
use self::registry::{Registered, Snapshot, Use};
use self::rows::Row;
use super::db::Db;
use super::Session;
use crate::error::{CallError, ModuleError, PluginError, RowProblem};
use crate::modules::{Imports, ModuleRow};
use crate::plugin::{CompiledPlugin, World};
use crate::sandbox::Limits;

/// Plugin functions one connection registers at most: SQLite looks functions up in a hash table
/// of at most 64 buckets, so each one makes registering (and resolving) the next slower; 50,000
/// register in about half a second. Beyond, `js_call` and `js_agg` reach the plugins.
const MAX_PLUGIN_FUNCTIONS: usize = 50_000;

/// The schema of `js_plugins` (also in `sql/schema.sql`, which is this very file).
pub const SCHEMA: &str = include_str!("schema.sql");

/// A connection's plugins: what each of jsbox's plugin functions captures.
#[derive(Clone)]
pub struct Plugins {
    session: Arc<Session>,
    db: Db,
}

/// Marks the connection as reading `js_plugins` until dropped.
struct Reading<'a>(&'a Session);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.reading_plugins.store(false, Ordering::SeqCst);
    }
}

impl Plugins {
    /// The plugins of `conn`, whose session is `session`.
    pub fn new(session: &Arc<Session>, conn: &Connection) -> Self {
        Plugins { session: Arc::clone(session), db: Db::of(conn) }
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Fails if jsbox is reading `js_plugins` on this connection right now (re-entry).
    fn entered(&self) -> Result<(), CallError> {
        if self.session.reading_plugins.load(Ordering::SeqCst) {
            return Err(PluginError::Reentered.into());
        }
        Ok(())
    }

    /// Fails if the connection's stored plugins are off (`js_config('plugins', 0)`).
    fn on(&self) -> Result<(), CallError> {
        if self.session.plugins_on() {
            Ok(())
        } else {
            Err(PluginError::Off.into())
        }
    }

    fn reading(&self) -> Result<Reading<'_>, CallError> {
        if self.session.reading_plugins.swap(true, Ordering::SeqCst) {
            return Err(PluginError::Reentered.into());
        }
        Ok(Reading(&self.session))
    }

    /// Fails unless the statement being run names `function` itself: a function that changes
    /// limits or plugins must not run on behalf of the database's schema.
    fn called_directly(&self, function: &str) -> Result<(), CallError> {
        super::direct::called_directly(self.db, function)
    }

    /// The registry, with `name`'s entry up to date with the database at `snapshot` (taken by
    /// the caller): its row is read again only if the snapshot moved since it was last checked,
    /// and without holding the lock.
    fn refreshed(&self, name: &str, snapshot: Option<Snapshot>) -> Result<MutexGuard<'_, Registry>, CallError> {
        let registry = self.session.registry();
        if snapshot.is_some_and(|snapshot| registry.is_current(name, snapshot)) {
            return Ok(registry);
        }
        let modules = registry.compiled_modules(name);
        drop(registry);
        let row = self.read_row(name, self.max_source_bytes())?;
        // A plugin is compiled with the modules it imports: if one changed, so did the plugin.
        let modules_current = modules.is_current(&|module| self.read_module(module))?;
        // Without the triggers the connection's own edits cannot be seen: read every time.
        self.session.own_changes.set_tracked(changes::triggers_installed(&self.db.connection()));
        let mut registry = self.session.registry();
        registry.update(name, snapshot, row);
        if !modules_current {
            registry.forget_compiled(name);
        }
        Ok(registry)
    }

    /// Module `name`'s row as `js_modules` holds it now (`None`: no such row, or no table), read
    /// as data. (It may be read while jsbox reads `js_plugins`: `js_plugins_reload()` compiles
    /// each plugin as it reads them.)
    pub fn read_module(&self, name: &str) -> Result<Option<ModuleRow>, CallError> {
        let _reading = self.reading().ok();
        match rows::read_module(&self.db.connection(), name).map_err(ModuleError::Table)? {
            None => Ok(None),
            Some(Ok(row)) => Ok(Some(row)),
            Some(Err(problem)) => Err(ModuleError::Row { name: name.to_owned(), problem }.into()),
        }
    }

    /// Compiles a plugin's source, with the modules it imports from `js_modules`. (Called with
    /// the registry locked: where the budget refuses a sandbox, only parked worlds, which the
    /// registry does not hold, are given back.)
    ///
    /// Compiling runs the plugin's top level (and its modules'), always in deterministic mode:
    /// whether a row is accepted when written, and whether a plugin compiles, is then the same on
    /// every machine, however loaded (a statement-replicated database writes the same rows).
    fn compile(&self, kind: PluginKind, source: &str) -> Result<CompiledPlugin, CallError> {
        let limits = Limits { deterministic: true, ..self.session.limits() };
        let read = |module: &str| self.read_module(module);
        crate::budget::with_room(
            || crate::plugin::compile(kind, source, &mut Imports::new(&read, &self.session.modules, &limits)),
            |error| crate::parking::release(self.session.owner) | (error.is_process_wide() && crate::parking::release_all()),
        )
    }

    /// Plugin `name`'s row as the database holds it now (`None`: no such row, or no table),
    /// read as data with re-entry refused, and counted for `js_debug()`.
    fn read_row(&self, name: &str, max_source_bytes: u64) -> Result<Option<Result<Row, RowProblem>>, CallError> {
        let row = {
            let _reading = self.reading()?;
            match rows::table(self.db)? {
                Some(table) => table.read_one(name, max_source_bytes)?,
                None => None,
            }
        };
        let bytes = match &row {
            Some(Ok(row)) => row.source.len() as u64,
            _ => 0,
        };
        self.session.plugin_rows_read.fetch_add(1, Ordering::Relaxed);
        self.session.plugin_source_bytes_read.fetch_add(bytes, Ordering::Relaxed);
        Ok(row)
    }

    /// The longest source worth reading: what one sandbox may hold.
    fn max_source_bytes(&self) -> u64 {
        self.session.limits().memory_mib << 20
    }

    /// The compiled current version of `name`, for `usage` with `argc` arguments.
    fn compiled(
        &self,
        name: &str,
        usage: Use,
        argc: Option<usize>,
        registered: Option<Registered>,
    ) -> Result<Arc<CompiledPlugin>, CallError> {
        self.entered()?;
        self.on()?;
        let snapshot = self.session.own_changes.snapshot(self.db);
        self.refreshed(name, snapshot)?.plugin(name, usage, argc, registered, &|kind, source| self.compile(kind, source))
    }

    /// A scalar plugin call, in the connection's kept world for that plugin.
    fn call_scalar(&self, ctx: &Context<'_>, name: &str, skip: usize, registered: Option<Registered>) -> Result<SqlValue, CallError> {
        self.entered()?;
        self.on()?;
        let snapshot = self.statement_data_version(ctx).and_then(|version| self.session.own_changes.snapshot_at(self.db, version));
        if let Some(current) = snapshot {
            if let Some(result) = self.session.registry().call_current(name, current, arguments(ctx, skip), registered) {
                return result;
            }
        }
        let compile = |kind, source: &str| self.compile(kind, source);
        let mut registry = self.refreshed(name, snapshot)?;
        if registry.runs_deterministically(name) || self.session.limits().deterministic {
            let compiled = registry.plugin(name, Use::Scalar, Some(ctx.len() - skip), registered, &compile)?;
            drop(registry);
            return self.call_deterministic(name, &compiled, arguments(ctx, skip));
        }
        registry.call_scalar(name, arguments(ctx, skip), registered, &|| self.session.limits(), &compile)
    }

    /// The main database's data version as the running statement sees it: read at the
    /// statement's first scalar plugin call and kept with the statement (SQLite drops auxiliary
    /// data when the statement ends or is reset), so that the rows after it skip two locked C
    /// calls each (W4: ~8 % of a call), or, where the statement holds no read transaction on
    /// main, a `PRAGMA data_version` each. Another connection's commit during a statement that
    /// holds one cannot be seen anyway; during one that does not, it is seen from the next
    /// statement on: a statement runs one version of each plugin, as it reads one snapshot of
    /// the tables. The connection's own changes are followed at every call (`OwnChanges`).
    fn statement_data_version(&self, ctx: &Context<'_>) -> Option<u64> {
        /// The key of the statement-wide auxiliary data (a negative argument number: SQLite
        /// keeps it for the whole statement instead of per call site and row); an arbitrary
        /// number, unlike SQLite's own JSON cache's (-429938).
        const STATEMENT_DATA_VERSION: std::ffi::c_int = -0x6a73_626f;
        if let Ok(Some(version)) = ctx.get_aux::<u64>(STATEMENT_DATA_VERSION) {
            return Some(*version);
        }
        let version = self.db.data_version()?;
        // Not kept (out of memory): the next call reads it again.
        let _ = ctx.set_aux(STATEMENT_DATA_VERSION, version);
        Some(version)
    }

    /// A scalar call in deterministic mode: in the plugin's world as loaded (a parked one, reset,
    /// or a new one), never in a world kept from earlier calls, whose history (globals, the
    /// collector's and the step counter's progress) is not the same on every machine.
    fn call_deterministic<'a>(
        &self,
        name: &str,
        compiled: &Arc<CompiledPlugin>,
        args: impl ExactSizeIterator<Item = ValueRef<'a>> + Clone,
    ) -> Result<SqlValue, CallError> {
        let session = &self.session;
        let mut limits = session.limits();
        limits.deterministic = true;
        let mut parked = crate::parking::unpark(session.owner, compiled, true);
        let mut world = session.with_room(|| match parked.take() {
            Some(mut world) => world.reseed(compiled).map(|()| world),
            None => World::new(compiled, &limits),
        })?;
        let mut result = world.main(args.clone());
        if result.as_ref().is_err_and(CallError::may_be_relieved) {
            // Refused for want of what other worlds of the connection hold (kept worlds of normal
            // plugins, say): not the call's own doing. Given back, the call runs again from the
            // start, as it would have on a connection with nothing kept.
            let process_wide = result.as_ref().is_err_and(CallError::is_process_wide);
            session.forget_kept_worlds();
            if process_wide {
                crate::parking::release_all();
            }
            world = World::new(compiled, &limits)?;
            result = world.main(args);
        }
        session.registry().record_console(name, world.console());
        if result.is_ok() {
            crate::parking::park(session.owner, compiled, world);
        }
        result
    }

    /// The connection's functions that are not plugins, for the shadowing check; asked once.
    fn foreign_functions(&self, conn: &Connection) -> Arc<HashSet<String>> {
        if let Some(known) = self.session.registry().foreign_functions() {
            return known;
        }
        let names = Arc::new(rows::function_names(conn));
        self.session.registry().set_foreign_functions(Arc::clone(&names));
        names
    }

    /// Checks that `name` can be a plugin's SQL function on this connection: its rules, no
    /// function of the connection's own (`foreign`; the pragma lists the connection's plugin
    /// functions too, which are not), no plugin registered under the same name in another case.
    fn check_name(registry: &Registry, name: &str, foreign: &HashSet<String>) -> Result<(), RowProblem> {
        if let Some(other) = registry.registered_in_other_case(name) {
            return Err(RowProblem::SameNameAs(name.to_owned(), other.to_owned()));
        }
        if registry.registered(name).is_some() {
            return rows::check_name(name, &HashSet::new());
        }
        rows::check_name(name, foreign)
    }

    /// Registers `name` as a SQL function of its kind, unless this connection already has it
    /// (whose kind then stays: see [`PluginError::KindChanged`]) or has [`MAX_PLUGIN_FUNCTIONS`]
    /// already (then the plugin has no function of its own, and is fine all the same: `js_call`
    /// and `js_agg` reach it).
    fn register(
        &self,
        registry: &mut Registry,
        name: &str,
        kind: Option<PluginKind>,
        deterministic: bool,
        foreign: &HashSet<String>,
    ) -> Result<(), CallError> {
        if registry.registered(name).is_some() {
            return Ok(());
        }
        Self::check_name(registry, name, foreign).map_err(PluginError::Row)?;
        if registry.registered_count() >= MAX_PLUGIN_FUNCTIONS {
            return Ok(());
        }
        let conn = self.db.connection();
        // SQLITE_DETERMINISTIC only for plugins that always run deterministically: SQLite may
        // then use them in indexes, generated columns and CHECK constraints.
        let deterministic = deterministic && kind.is_some();
        let flags =
            if deterministic { FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC } else { FunctionFlags::SQLITE_UTF8 };
        let registered = kind.map_or(Registered::Broken, Registered::As);
        let aggregate = |usage| PluginAggregate { plugins: self.clone(), name: Some(name.to_owned()), usage, registered: Some(registered) };
        let result = match registered {
            Registered::As(PluginKind::Aggregate) => conn.create_aggregate_function(name, -1, flags, aggregate(Use::Aggregate)),
            Registered::As(PluginKind::Window) => conn.create_window_function(name, -1, flags, aggregate(Use::Window)),
            Registered::As(PluginKind::Scalar) | Registered::Broken => {
                let plugins = self.clone();
                let function = name.to_owned();
                conn.create_scalar_function(name, -1, flags, move |ctx| {
                    plugins.call_scalar(ctx, &function, 0, Some(registered)).map_err(|e| e.in_function(&function))
                })
            }
        };
        result.map_err(|e| PluginError::Sql("registering the plugin's SQL function", e.to_string()))?;
        registry.set_registered(name, registered, deterministic);
        Ok(())
    }

    /// Whether `js_plugins` exists as an ordinary table (else why not).
    fn table_exists(&self, conn: &Connection) -> Result<bool, CallError> {
        let _reading = self.reading()?;
        Ok(rows::table_exists(conn)?)
    }

    /// Installs the connection's triggers (and so tracks its own edits again).
    fn install_triggers(&self, conn: &Connection) -> Result<(), CallError> {
        conn.execute_batch(changes::TRIGGERS).map_err(|e| PluginError::Sql("installing the triggers", e.to_string()))?;
        if rows::modules_table_exists(conn)? {
            conn.execute_batch(changes::MODULE_TRIGGERS).map_err(|e| PluginError::Sql("installing the triggers", e.to_string()))?;
        }
        if rows::has_deterministic_column(conn) {
            conn.execute_batch(changes::DETERMINISTIC_TRIGGERS).map_err(|e| PluginError::Sql("installing the triggers", e.to_string()))?;
            if rows::modules_table_exists(conn)? {
                conn.execute_batch(changes::MODULE_GUARD_TRIGGERS)
                    .map_err(|e| PluginError::Sql("installing the triggers", e.to_string()))?;
            }
        }
        self.session.own_changes.set_tracked(true);
        Ok(())
    }

    /// `js_plugins_init()` (which creates the table) and `js_plugins_reload()`: installs the
    /// triggers, reads every row, registers every usable plugin and compiles it; fails naming
    /// every row that cannot be used (the others are registered all the same). Returns the
    /// number of rows.
    fn sync(&self, function: &str, table: MissingTable) -> Result<i64, CallError> {
        self.entered()?;
        self.on()?;
        self.called_directly(function)?;
        let conn = self.db.connection();
        let mut exists = self.table_exists(&conn)?;
        if table == MissingTable::Create {
            conn.execute_batch(SCHEMA).map_err(|e| PluginError::Sql("creating js_plugins", e.to_string()))?;
            exists = self.table_exists(&conn)?;
        }
        if !exists {
            return Err(PluginError::NoTable.into());
        }
        self.install_triggers(&conn)?;
        let snapshot = self.session.own_changes.snapshot(self.db);
        let _reading = self.reading()?;
        let Some(table) = rows::table(self.db)? else { return Err(PluginError::NoTable.into()) };
        let listing = table.list()?;
        let foreign = self.foreign_functions(&conn);
        let compile = |kind, source: &str| self.compile(kind, source);
        let max_source_bytes = self.max_source_bytes();
        let mut problems = Vec::new();
        let mut names = HashSet::new();
        // One row at a time: only one source is in memory at once, however large the table.
        for listed in &listing {
            let name = match &listed.name {
                Ok(name) => name,
                Err(problem) => {
                    problems.push(problem.to_string());
                    continue;
                }
            };
            if !names.insert(name.as_str()) {
                problems.push(format!("{name}: {}", RowProblem::Duplicate(name.clone())));
                continue;
            }
            let row = table.read_one(name, max_source_bytes)?;
            let mut registry = self.session.registry();
            registry.update(name, snapshot, row.clone());
            let (kind, deterministic) = match &row {
                Some(Ok(row)) => (Some(row.kind), row.deterministic),
                _ => (None, false),
            };
            let registered = registry.registered(name);
            let usable = self
                .register(&mut registry, name, kind, deterministic, &foreign)
                .and_then(|()| registry.plugin(name, Use::Any, None, registered, &compile).map(drop));
            if let Err(e) = usable {
                problems.push(format!("{name}: {e}"));
            }
        }
        self.session.registry().retain(|name| names.contains(name));
        if problems.is_empty() {
            Ok(listing.len() as i64)
        } else {
            Err(PluginError::BadRows(problems).into())
        }
    }

    /// At load: registers the stored plugins that can be, without compiling anything (a broken
    /// plugin reports its error when called, or from `js_plugins_reload()`), and never fails.
    fn register_stored(&self) {
        let conn = self.db.connection();
        let listing = {
            let Ok(_reading) = self.reading() else { return };
            match rows::table(self.db) {
                Ok(Some(table)) => table.list(),
                _ => return,
            }
        };
        let Ok(listing) = listing else { return };
        let _ = self.install_triggers(&conn);
        let foreign = self.foreign_functions(&conn);
        let mut registry = self.session.registry();
        for row in listing {
            if let Ok(name) = row.name {
                let _ = self.register(&mut registry, &name, row.kind.ok(), row.deterministic, &foreign);
            }
        }
    }

    /// `js_plugins_check(name, kind, n_args, source)`, from the BEFORE INSERT and UPDATE
    /// triggers: the row about to be written must be a usable plugin, else the statement fails
    /// and nothing is written. Compiling it now also fills the cache for its first call.
    fn check(&self, ctx: &Context<'_>) -> Result<SqlValue, CallError> {
        self.entered()?;
        let name = rows::name(ctx.get_raw(0)).map_err(PluginError::Row)?;
        let named = |e: CallError| PluginError::named(&name, e);
        let row = rows::row(ctx.get_raw(1), ctx.get_raw(2), ctx.get_raw(3)).map_err(|p| named(PluginError::Row(p).into()))?;
        let foreign = self.foreign_functions(&self.db.connection());
        let mut registry = self.session.registry();
        Self::check_name(&registry, &name, &foreign).map_err(|p| named(PluginError::Row(p).into()))?;
        registry.compile(row.kind, row.source, &|kind, source| self.compile(kind, source)).map_err(named)?;
        Ok(SqlValue::Null)
    }

    /// `js_plugins_in_use(name)`, from the guard triggers: fails if deterministic plugin `name`,
    /// about to change or go, is used by the schema of the main database (an index, a
    /// generated column, a CHECK constraint), whose stored values its old source computed.
    fn refuse_if_in_use(&self, name: &str) -> Result<SqlValue, CallError> {
        let users = {
            let _reading = self.reading().ok();
            schema_users::schema_users(&self.db.connection(), name).map_err(CallError::from)?
        };
        match users.first() {
            None => Ok(SqlValue::Null),
            Some((kind, user)) => Err(PluginError::UsedBySchema { name: name.to_owned(), kind: kind.clone(), user: user.clone() }.into()),
        }
    }

    /// `js_modules_in_use(name)`, from the guard triggers of `js_modules`: fails if module
    /// `name`, about to change or go, is imported by a deterministic plugin that the schema uses.
    fn refuse_module_if_in_use(&self, module: &str) -> Result<SqlValue, CallError> {
        let deterministic: Vec<String> = {
            let _reading = self.reading().ok();
            let conn = self.db.connection();
            let mut stmt = conn
                .prepare("SELECT name FROM main.js_plugins WHERE deterministic = 1 AND typeof(name) = 'text'")
                .map_err(|e| PluginError::Sql("reading js_plugins", e.to_string()))?;
            let names = stmt.query_map([], |r| r.get(0)).and_then(|rows| rows.collect());
            names.map_err(|e| PluginError::Sql("reading js_plugins", e.to_string()))?
        };
        for plugin in deterministic {
            let users = schema_users::schema_users(&self.db.connection(), &plugin)?;
            let Some((kind, user)) = users.first() else { continue };
            // A plugin that does not compile imports nothing that runs.
            let Ok(compiled) = self.compiled(&plugin, Use::Any, None, None) else { continue };
            if compiled.modules.iter().any(|imported| imported.row.name == module) {
                return Err(
                    PluginError::ModuleUsedBySchema { module: module.to_owned(), plugin, kind: kind.clone(), user: user.clone() }.into()
                );
            }
        }
        Ok(SqlValue::Null)
    }

    /// `js_modules_check(name, kind, source)`, from the BEFORE INSERT and UPDATE triggers of
    /// `js_modules`: the row about to be written must compile (with what it imports that the
    /// table holds), else the statement fails and nothing is written.
    fn check_module(&self, ctx: &Context<'_>) -> Result<SqlValue, CallError> {
        self.entered()?;
        let name = match ctx.get_raw(0) {
            ValueRef::Text(name) => String::from_utf8_lossy(name).into_owned(),
            other => {
                return Err(ModuleError::Row {
                    name: String::new(),
                    problem: format!("the name must be TEXT, not {}", super::args::type_name(other)),
                }
                .into())
            }
        };
        let row =
            rows::module_row(&name, ctx.get_raw(1), ctx.get_raw(2)).map_err(|problem| ModuleError::Row { name: name.clone(), problem })?;
        // Deterministic, as plugins are compiled (`Plugins::compile`).
        let limits = Limits { deterministic: true, ..self.session.limits() };
        let read = |module: &str| self.read_module(module);
        Imports::new(&read, &self.session.modules, &limits).check(&row)?;
        Ok(SqlValue::Null)
    }

    /// `js_plugins_changed(new_name, old_name)`, from the AFTER INSERT, UPDATE and DELETE
    /// triggers (a name is NULL where there is none): a plugin that is no more under its old
    /// name is forgotten (with its kept world); a new one gets its SQL function, registered as
    /// the row now stored says (never as the arguments say: a CHECK constraint of a database on
    /// an old SQLite may call this too). Returns a new own-change epoch.
    fn changed(&self, ctx: &Context<'_>) -> Result<i64, CallError> {
        self.entered()?;
        let text = |i| match ctx.get_raw(i) {
            ValueRef::Text(name) => Some(String::from_utf8_lossy(name).into_owned()),
            _ => None,
        };
        let (new_name, old_name) = (text(0), text(1));
        if let Some(old_name) = old_name.filter(|old| Some(old) != new_name.as_ref()) {
            self.session.registry().forget(&old_name);
        }
        if let Some(name) = new_name {
            if let Some(Ok(row)) = self.read_row(&name, self.max_source_bytes())? {
                let foreign = self.foreign_functions(&self.db.connection());
                let mut registry = self.session.registry();
                self.register(&mut registry, &name, Some(row.kind), row.deterministic, &foreign)
                    .map_err(|e| PluginError::named(&name, e))?;
            }
        }
        Ok(self.session.own_changes.next_epoch())
    }
}

/// What `js_plugins_init` and `js_plugins_reload` do where `js_plugins` does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MissingTable {
    /// Create it (`js_plugins_init`).
    Create,
    /// Fail: there is nothing to reload.
    Refuse,
}

/// Registers `js_plugins_init`, `js_plugins_reload`, `js_plugins_changed`, `js_call`, `js_agg`,
/// and, when `js_plugins` exists, every plugin in it.
pub fn register(conn: &Connection, session: &Arc<Session>) -> rusqlite::Result<()> {
    let plugins = Plugins { session: Arc::clone(session), db: Db::of(conn) };
    // DIRECTONLY: they change what the connection runs, so a database's own schema (views,
    // triggers) may not call them; the connection's TEMP triggers may.
    let direct = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DIRECTONLY;
    for (name, table) in [("js_plugins_init", MissingTable::Create), ("js_plugins_reload", MissingTable::Refuse)] {
        let plugins = plugins.clone();
        conn.create_scalar_function(name, 0, direct, move |_| plugins.sync(name, table).map_err(|e| e.in_function(name)))?;
    }
    let check = plugins.clone();
    conn.create_scalar_function("js_plugins_check", 4, direct, move |ctx| check.check(ctx).map_err(|e| e.in_function("js_plugins")))?;
    let in_use = plugins.clone();
    conn.create_scalar_function("js_plugins_in_use", 1, direct, move |ctx| {
        let name = ctx.get::<String>(0)?;
        in_use.refuse_if_in_use(&name).map_err(|e| e.in_function("js_plugins"))
    })?;
    let module_in_use = plugins.clone();
    conn.create_scalar_function("js_modules_in_use", 1, direct, move |ctx| {
        let name = ctx.get::<String>(0)?;
        module_in_use.refuse_module_if_in_use(&name).map_err(|e| e.in_function("js_modules"))
    })?;
    let check_module = plugins.clone();
    conn.create_scalar_function("js_modules_check", 3, direct, move |ctx| {
        check_module.check_module(ctx).map_err(|e| e.in_function("js_modules"))
    })?;
    let changed = plugins.clone();
    conn.create_scalar_function("js_plugins_changed", 2, direct, move |ctx| changed.changed(ctx).map_err(|e| e.in_function("js_plugins")))?;
    let epochs = plugins.clone();
    conn.create_scalar_function("js_plugins_epoch_issued", 1, direct, move |ctx| {
        Ok(epochs.session.own_changes.take_issued(ctx.get::<Option<i64>>(0)?.unwrap_or(0)))
    })?;
    let call = plugins.clone();
    conn.create_scalar_function("js_call", -1, FunctionFlags::SQLITE_UTF8, move |ctx| {
        let name = plugin_name_argument(ctx).map_err(|e| e.in_function("js_call"))?;
        call.call_scalar(ctx, &name, 1, None).map_err(|e| e.in_function(&name))
    })?;
    let js_agg = PluginAggregate { plugins: plugins.clone(), name: None, usage: Use::Aggregate, registered: None };
    conn.create_aggregate_function("js_agg", -1, FunctionFlags::SQLITE_UTF8, js_agg)?;
    plugins.register_stored();
    Ok(())
}

/// The first argument of `js_call` / `js_agg`: the plugin's name.
fn plugin_name_argument(ctx: &Context<'_>) -> Result<String, CallError> {
    if ctx.is_empty() {
        return Err(PluginError::MissingName.into());
    }
    match ctx.get_raw(0) {
        ValueRef::Text(name) => Ok(String::from_utf8_lossy(name).into_owned()),
        other => Err(CallError::ArgumentType { what: "the plugin name", expected: "TEXT", got: super::args::type_name(other) }),
    }
}

fn arguments<'a>(ctx: &'a Context<'_>, skip: usize) -> impl ExactSizeIterator<Item = ValueRef<'a>> + Clone {
    (skip..ctx.len()).map(|i| ctx.get_raw(i))
}

impl Session {
    /// What `js_debug()` shows of the connection's plugins.
    pub fn plugin_stats(&self) -> serde_json::Value {
        let registry = self.registry();
        let (entries, entry_bytes) = registry.entries();
        serde_json::json!({
            "registered": registry.registered_count(),
            "kept_worlds": registry.kept_worlds(),
            "parked_worlds": crate::parking::count(self.owner),
            "console": registry.consoles().into_iter().map(|(name, text)| (name.to_owned(), text.into())).collect::<serde_json::Map<_, _>>(),
            "compiled_cached": registry.compiled_cached(),
            "entries": entries,
            "entry_bytes": entry_bytes,
            "rows_read": self.plugin_rows_read.load(Ordering::Relaxed),
            "source_bytes_read": self.plugin_source_bytes_read.load(Ordering::Relaxed),
        })
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.plugins.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl From<RowProblem> for CallError {
    fn from(problem: RowProblem) -> Self {
        CallError::Plugin(PluginError::Row(problem))
    }
}
