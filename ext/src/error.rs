//! The one error type of the extension. Every message names the SQL function and the cause:
//! `js_eval: ReferenceError: nosuch is not defined (line 3)`.

use std::borrow::Cow;
use std::fmt;

/// Why a call into the sandbox, or the preparation of its arguments, failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The script threw, or did not compile. The text is `Name: message (line N)`.
    #[error("{0}")]
    Exception(String),
    #[error("invalid JSON input: {0}")]
    InvalidJson(String),
    /// The script's value has no SQL counterpart.
    #[error("{0}")]
    UnsupportedResult(String),
    #[error("time limit of {0} ms exceeded")]
    TimeLimit(u64),
    /// Deterministic mode: the call took more steps than `js_config('step_limit')` allows.
    #[error("step limit of {0} million steps exceeded (deterministic mode)")]
    StepLimit(u64),
    /// The connection was interrupted (`sqlite3_interrupt`) while the call ran.
    #[error("interrupted")]
    Interrupted,
    #[error("memory limit of {0} MiB exceeded")]
    MemoryLimit(u64),
    /// The system could not give the sandbox memory that its limits allowed.
    #[error(
        "the system refused the sandbox more memory ({0}): the process's address space (ulimit -v) or the machine's memory is exhausted"
    )]
    SystemMemory(String),
    #[error("stack overflow: {0}")]
    StackOverflow(String),
    #[error("{what} is not valid UTF-8 (invalid byte at offset {offset})")]
    InvalidUtf8 { what: Cow<'static, str>, offset: usize },
    #[error("{what} must be {expected}, not {got}")]
    ArgumentType { what: &'static str, expected: &'static str, got: &'static str },
    /// The script is unusable as given (e.g. it holds a NUL character).
    #[error("{0}")]
    Script(String),
    /// A function that changes limits or plugins was not called by the statement being run
    /// alone (see `sql::direct`), and why not.
    #[error("refused: {0}")]
    NotDirect(&'static str),
    /// A `js_config` setting is unknown or out of range.
    #[error("{0}")]
    Config(String),
    /// A stored plugin is missing, misdeclared or unusable as asked.
    #[error("{0}")]
    Plugin(#[from] PluginError),
    /// The process holds as many sandboxes as it may (`js_debug()`'s `sandboxes_max`).
    #[error("too many sandboxes in use at once in this process ({0}); try again when other statements finish")]
    PoolExhausted(u32),
    /// The connection's live sandboxes together would exceed its memory budget.
    #[error("the connection's memory budget of {0} MiB for all its sandboxes is spent (js_config('connection_memory_mb'))")]
    ConnectionMemory(u64),
    /// The connection holds as many sandboxes as one connection may (an eighth of the pool).
    #[error("the connection already holds {0} sandboxes, the most one connection may hold at once; finish other statements first")]
    SandboxShare(u32),
    /// One row of arguments is larger than a sandbox may hold.
    #[error("a row of {row_mib} MiB of arguments cannot fit the memory limit of {limit_mib} MiB")]
    RowTooLarge { row_mib: u64, limit_mib: u64 },
    /// The guest trapped for a reason that is not a limit: a bug in the guest, not the script.
    #[error("sandbox fault: {0}")]
    Trap(String),
    /// An `import` asked for a module the sandbox was not given (the guest's signal to fetch it
    /// from `js_modules`).
    #[error("module '{0}' is not in js_modules")]
    ModuleMissing(String),
    /// A stored module is missing or unusable.
    #[error("{0}")]
    Module(#[from] ModuleError),
    /// The extension could not start its engine, or the guest broke the protocol.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a stored module cannot be imported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModuleError {
    #[error("module '{0}' is not in js_modules")]
    NotFound(String),
    /// Modules that import each other, in import order (the first is the last again).
    #[error("modules import each other in a cycle ({}); jsbox compiles a module after what it imports, so one of them must not import the other", .0.join(" → "))]
    Cycle(Vec<String>),
    #[error("a script imports more than {0} modules")]
    TooMany(usize),
    /// A row of `js_modules` that cannot be a module, and why.
    #[error("module '{name}' in js_modules: {problem}")]
    Row { name: String, problem: String },
    /// `js_modules` cannot be read.
    #[error("{0}")]
    Table(PluginError),
    /// A module that does not compile or fails to load, named.
    #[error("module '{name}': {cause}")]
    Named { name: String, cause: Box<CallError> },
}

/// Why a stored plugin cannot be used, or `js_plugins` cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginError {
    #[error("no plugin named {0} in js_plugins (deleted?)")]
    NotFound(String),
    #[error("there is no js_plugins table; js_plugins_init() creates it")]
    NoTable,
    /// `js_plugins` (or `js_modules`) exists but is a view or a virtual table: reading it would
    /// run its code.
    #[error("{0} is {1}, not an ordinary table; jsbox reads plugins and modules only from a table")]
    NotATable(&'static str, &'static str),
    #[error("{0} has no column {1}")]
    MissingColumn(&'static str, &'static str),
    /// A generated column would run an expression of the database's schema on every read.
    #[error("{0}.{1} is a generated column; jsbox reads plugins and modules only from stored columns")]
    GeneratedColumn(&'static str, String),
    /// A row that cannot be a plugin, and why.
    #[error("{0}")]
    Row(#[from] RowProblem),
    #[error("{name} is {} {kind} plugin, not {want}", article(kind))]
    WrongKind { name: String, kind: &'static str, want: &'static str },
    /// SQLite cannot redefine a function while any statement runs, which is always the case
    /// inside a SQL function: the connection keeps the kind it registered first.
    #[error("{name} is now {} {now} plugin, but this connection registered its function as {} {registered} function; reopen the connection (or load jsbox again) to use it as {now}{also}", article(now), article(registered))]
    KindChanged { name: String, registered: &'static str, now: &'static str, also: &'static str },
    #[error("{name} takes {expected} argument{s}, not {got}", s = if *expected == 1 { "" } else { "s" })]
    ArgumentCount { name: String, expected: i32, got: usize },
    /// A plugin whose function this connection registered as deterministic (which SQLite may
    /// have used in an index) is no longer: it does not run until the connection is reopened.
    #[error("{0} is no longer deterministic (js_plugins.deterministic), but this connection registered its function as deterministic, which indexes and generated columns may rely on; reopen the connection to use it")]
    NoLongerDeterministic(String),
    /// An edit or deletion of a module that a deterministic plugin the schema uses imports.
    #[error("module '{module}' is imported by the deterministic plugin {plugin}, and {kind} {user} uses that plugin: what it stores was computed with this version; drop {user} (or the column), change the module, then create it again")]
    ModuleUsedBySchema { module: String, plugin: String, kind: String, user: String },
    /// An edit or deletion of a deterministic plugin that the schema uses.
    #[error("{name} is deterministic and {kind} {user} uses it: what it stores was computed by this version, and SQLite cannot know it changed; drop {user} (or the column), change the plugin, then create it again")]
    UsedBySchema { name: String, kind: String, user: String },
    #[error("the plugin name changed within a group, from {first} to {now}")]
    NameChangedInGroup { first: String, now: String },
    #[error("the first argument must be the plugin's name")]
    MissingName,
    #[error("stored plugins are off on this connection (js_config('plugins', 0))")]
    Off,
    /// A jsbox function was called while jsbox itself was reading `js_plugins`.
    #[error("jsbox cannot be called while it reads js_plugins (re-entry refused)")]
    Reentered,
    #[error("{0}: {1}")]
    Sql(&'static str, String),
    /// A problem of one plugin, named.
    #[error("{name}: {cause}")]
    Named { name: String, cause: Box<CallError> },
    /// Every row `js_plugins_reload()` could not use.
    #[error("{}", .0.join("; "))]
    BadRows(Vec<String>),
}

impl PluginError {
    /// `cause`, attributed to plugin `name`.
    pub fn named(name: &str, cause: impl Into<CallError>) -> Self {
        PluginError::Named { name: name.to_owned(), cause: Box::new(cause.into()) }
    }
}

/// Why a row of `js_plugins` cannot be a plugin.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RowProblem {
    #[error("a row of js_plugins has no name")]
    NoName,
    #[error("the plugin name must be TEXT, not {0}")]
    NameNotText(&'static str),
    #[error("plugin name {0:?} is not an identifier (letters, digits, _)")]
    NotIdentifier(String),
    #[error("plugin name is {0} bytes long; SQL function names are at most {max} bytes", max = MAX_NAME_BYTES)]
    NameTooLong(usize),
    #[error("plugin name {0} is reserved: js_ names belong to jsbox")]
    Reserved(String),
    /// `regexp`, `match`, `glob` and `like` implement SQL operators.
    #[error("plugin name {0} would take over the SQL operator {op}; choose another name", op = .0.to_ascii_uppercase())]
    Operator(String),
    #[error("plugin name {0} would shadow the SQL function {0}(); choose another name")]
    Shadows(String),
    /// SQLite ignores case in function names.
    #[error("plugin name {0} is the same SQL function as plugin {1} (SQLite ignores case in function names)")]
    SameNameAs(String, String),
    #[error("unknown kind {0}; a plugin is scalar, aggregate or window")]
    UnknownKind(String),
    #[error("n_args is {0}; it must be -1 (any number) or between 0 and {max}", max = MAX_PLUGIN_ARGS)]
    ArgumentCountOutOfRange(String),
    #[error("the source is NULL")]
    NoSource,
    #[error("the source must be TEXT or BLOB, not {0}")]
    SourceNotText(&'static str),
    #[error("the plugin source is not valid UTF-8 (invalid byte at offset {0})")]
    SourceNotUtf8(usize),
    #[error("the source has at least {at_least_bytes} bytes; no sandbox can hold more than the memory limit of {limit_mib} MiB")]
    SourceTooLarge { at_least_bytes: u64, limit_mib: u64 },
    /// Two rows of the same name (a table without jsbox's primary key): the first one counts.
    #[error("another row is named {0} too; only the first one is used")]
    Duplicate(String),
}

/// "a" or "an", for a kind's name.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// SQLite's limit on a function name's length, in bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// SQLite's default limit on a function's arguments (`SQLITE_MAX_FUNCTION_ARG`).
pub const MAX_PLUGIN_ARGS: i64 = 127;

/// A [`CallError`] attributed to the SQL function that reports it.
#[derive(Debug)]
pub struct FunctionError {
    /// The SQL function (or plugin) that reports the error.
    pub function: String,
    pub error: CallError,
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.function, self.error)
    }
}

impl std::error::Error for FunctionError {}

impl CallError {
    /// Whether this error can be the guest's way of failing for want of memory.
    pub fn may_be_memory(&self) -> bool {
        matches!(self, CallError::Exception(_) | CallError::MemoryLimit(_) | CallError::Trap(_))
    }

    /// Whether this refusal may go away when the connection gives back the sandboxes it keeps:
    /// its budget (memory or sandboxes), the process's most, or the system's refusal of memory.
    pub fn may_be_relieved(&self) -> bool {
        matches!(
            self,
            CallError::ConnectionMemory(_) | CallError::SandboxShare(_) | CallError::PoolExhausted(_) | CallError::SystemMemory(_)
        )
    }

    /// Whether this refusal comes from the process as a whole (its most sandboxes, the system's
    /// memory) rather than the connection's own budget: any connection's parked worlds relieve it.
    pub fn is_process_wide(&self) -> bool {
        matches!(self, CallError::PoolExhausted(_) | CallError::SystemMemory(_))
    }

    /// The rusqlite error that makes SQLite report this error for `function`.
    pub fn in_function(self, function: &str) -> rusqlite::Error {
        if self == CallError::Interrupted {
            // SQLite's own code and message ("interrupted"), so that the statement fails the
            // way any interrupted statement does. (With a message of our own, rusqlite would
            // set it after the code, and `sqlite3_result_error` turns the code into
            // SQLITE_ERROR.)
            let code = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERRUPT);
            return rusqlite::Error::SqliteFailure(code, None);
        }
        rusqlite::Error::UserFunctionError(Box::new(FunctionError { function: function.to_owned(), error: self }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_function_and_the_cause() {
        let err = CallError::TimeLimit(1000).in_function("js_eval");
        assert_eq!(err.to_string(), "js_eval: time limit of 1000 ms exceeded");
        let err = CallError::InvalidUtf8 { what: "the JSON input".into(), offset: 3 }.in_function("js_eval");
        assert_eq!(err.to_string(), "js_eval: the JSON input is not valid UTF-8 (invalid byte at offset 3)");
    }
}
