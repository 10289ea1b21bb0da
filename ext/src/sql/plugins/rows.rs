//! Reading `js_plugins` and deciding what each row is: a [`Row`] jsbox can run, or the
//! [`RowProblem`] that keeps it from being one. A bad row never affects another.
//!
//! The table may come from a database file someone else made, so it is read as data only: it
//! must be an ordinary table (a view or a virtual table would run the file's code on every
//! read), without generated columns among those jsbox reads. Reading such a table's stored
//! columns runs nothing of the file's: no expression, no module. (The connection's
//! `trusted_schema` setting is left alone: changing it expires every statement of the
//! connection, the running ones included.)

use std::collections::HashSet;
use std::sync::Arc;

use jsbox_abi::{ModuleKind, PluginKind};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};

use crate::error::{PluginError, RowProblem, MAX_NAME_BYTES, MAX_PLUGIN_ARGS};
use crate::modules::ModuleRow;
use crate::sql::args::type_name;
use crate::sql::db::Db;

/// A row of `js_plugins` that can be a plugin (its name is checked apart: [`check_name`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub kind: PluginKind,
    /// -1: any number of arguments.
    pub n_args: i32,
    pub source: Arc<str>,
    /// Registered as `SQLITE_DETERMINISTIC`, and always run in deterministic mode (the
    /// `deterministic` column is 1; a table without that column has none).
    pub deterministic: bool,
}

/// What a row is, read without its source (enough to register its SQL function).
#[derive(Debug, Clone)]
pub struct Listing {
    pub name: Result<String, RowProblem>,
    pub kind: Result<PluginKind, RowProblem>,
    pub deterministic: bool,
}

/// The columns jsbox reads of `js_plugins`...
const COLUMNS: [&str; 4] = ["name", "kind", "source", "n_args"];
/// ...and of `js_modules`.
const MODULE_COLUMNS: [&str; 3] = ["name", "kind", "source"];

/// Whether `main.js_plugins` exists, refusing anything but an ordinary table with stored columns.
pub fn table_exists(conn: &Connection) -> Result<bool, PluginError> {
    checked_table(conn, "js_plugins", &COLUMNS)
}

/// Whether `main.<table>` exists, refusing anything but an ordinary table whose `columns` are
/// stored.
fn checked_table(conn: &Connection, table: &'static str, columns: &[&'static str]) -> Result<bool, PluginError> {
    let found = conn
        .query_row(
            "SELECT type, rootpage, sql FROM main.sqlite_master WHERE type IN ('table', 'view') AND lower(name) = ?1",
            [table],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<String>>(2)?)),
        )
        .optional()
        .map_err(sql("reading the schema"))?;
    let Some((kind, rootpage, sql_text)) = found else { return Ok(false) };
    if kind == "view" {
        return Err(PluginError::NotATable(table, "a view"));
    }
    // A virtual table has no pages of its own (root page 0), and its statement is CREATE
    // VIRTUAL TABLE, however written (comments may stand between the words).
    let ordinary =
        rootpage.is_some_and(|page| page > 0) && sql_text.as_deref().is_some_and(|sql| first_words(sql, 2) == ["CREATE", "TABLE"]);
    if !ordinary {
        return Err(PluginError::NotATable(table, "a virtual table"));
    }
    // table_xinfo's `hidden`: 2 and 3 are generated columns.
    let mut stmt = conn.prepare("SELECT lower(name), hidden FROM pragma_table_xinfo(?1, 'main')").map_err(sql("reading the schema"))?;
    let found: Vec<(String, i64)> =
        stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?))).and_then(|rows| rows.collect()).map_err(sql("reading the schema"))?;
    for wanted in columns {
        match found.iter().find(|(name, _)| name == wanted) {
            None => return Err(PluginError::MissingColumn(table, wanted)),
            Some((name, 2 | 3)) => return Err(PluginError::GeneratedColumn(table, name.clone())),
            Some(_) => {}
        }
    }
    Ok(true)
}

/// Whether `main.js_modules` exists, refusing anything but an ordinary table with stored columns.
pub fn modules_table_exists(conn: &Connection) -> Result<bool, PluginError> {
    checked_table(conn, "js_modules", &MODULE_COLUMNS)
}

/// Module `name`'s row of `main.js_modules` (checked as `js_plugins` is), `None` if there is no
/// such row or no such table; a row that cannot be a module is the problem's text.
pub fn read_module(conn: &Connection, name: &str) -> Result<Option<Result<ModuleRow, String>>, PluginError> {
    if !modules_table_exists(conn)? {
        return Ok(None);
    }
    let mut stmt =
        conn.prepare_cached("SELECT kind, source FROM main.js_modules WHERE name = ?1 LIMIT 1").map_err(sql("reading js_modules"))?;
    let row =
        stmt.query_row([name], |r| Ok(module_row(name, r.get_ref(0)?, r.get_ref(1)?))).optional().map_err(sql("reading js_modules"))?;
    Ok(row)
}

/// A `js_modules` row's kind and source, checked.
pub fn module_row(name: &str, kind: ValueRef<'_>, source: ValueRef<'_>) -> Result<ModuleRow, String> {
    let kind = match kind {
        ValueRef::Text(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            ModuleKind::parse(&text)
                .ok_or_else(|| format!("unknown kind {text:?}; a module is 'module' (ES) or 'commonjs' (CommonJS, UMD)"))?
        }
        other => return Err(format!("unknown kind {}; a module is 'module' (ES) or 'commonjs' (CommonJS, UMD)", type_name(other))),
    };
    let source = match source {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            std::str::from_utf8(bytes).map_err(|e| format!("the source is not valid UTF-8 (invalid byte at offset {})", e.valid_up_to()))?
        }
        ValueRef::Null => return Err("the source is NULL".into()),
        other => return Err(format!("the source must be TEXT or BLOB, not {}", type_name(other))),
    };
    Ok(ModuleRow { name: name.to_owned(), kind, source: source.into() })
}

/// `js_plugins`, checked to be an ordinary table with stored columns ([`table_exists`]): what
/// may be read as data. Check once, then read as often as needed.
pub struct Table {
    db: Db,
    /// What the `deterministic` column is read as: the column, or 0 where the table has none.
    deterministic: &'static str,
}

/// The connection's `js_plugins`, checked; `None` if there is none.
pub fn table(db: Db) -> Result<Option<Table>, PluginError> {
    if !table_exists(&db.connection())? {
        return Ok(None);
    }
    let deterministic = if has_deterministic_column(&db.connection()) { "deterministic" } else { "0" };
    Ok(Some(Table { db, deterministic }))
}

/// Whether `main.js_plugins` has the `deterministic` column (jsbox's own tables do; older
/// tables, and tables made by hand, may not). A generated one does not count.
pub fn has_deterministic_column(conn: &Connection) -> bool {
    conn.query_row(
        "SELECT count(*) FROM pragma_table_xinfo('js_plugins', 'main') WHERE lower(name) = 'deterministic' AND hidden NOT IN (2, 3)",
        [],
        |r| r.get::<_, i64>(0),
    )
    .is_ok_and(|n| n > 0)
}

/// A `deterministic` value: 1 is, anything else is not.
fn is_deterministic(value: ValueRef<'_>) -> bool {
    matches!(value, ValueRef::Integer(1))
}

impl Table {
    /// Every row's name and kind (no source: loading stays cheap however big the plugins are).
    pub fn list(&self) -> Result<Vec<Listing>, PluginError> {
        let query = format!("SELECT name, kind, {} FROM main.js_plugins", self.deterministic);
        self.query(&query, [], |r| {
            Ok(Listing { name: name(r.get_ref(0)?), kind: kind(r.get_ref(1)?), deterministic: is_deterministic(r.get_ref(2)?) })
        })
    }

    /// Plugin `name`'s row as the database holds it now (its first, if several have that
    /// name); `None` if there is none. A source longer than `max_source_bytes` is not copied out
    /// of SQLite: no sandbox could hold it. (Its length is asked first: SQLite reads a TEXT value
    /// to count its characters, never more than its bytes, but keeps nothing of it.)
    pub fn read_one(&self, plugin: &str, max_source_bytes: u64) -> Result<Option<Result<Row, RowProblem>>, PluginError> {
        let max = i64::try_from(max_source_bytes).unwrap_or(i64::MAX);
        let lengths =
            self.query("SELECT length(source) FROM main.js_plugins WHERE name = ?1 LIMIT 1", [plugin], |r| r.get::<_, Option<i64>>(0))?;
        let Some(length) = lengths.into_iter().next() else { return Ok(None) };
        let too_large = |bytes: u64| RowProblem::SourceTooLarge { at_least_bytes: bytes, limit_mib: max_source_bytes >> 20 };
        if let Some(length) = length.filter(|n| *n > max) {
            return Ok(Some(Err(too_large(length as u64))));
        }
        let query = format!("SELECT kind, n_args, source, {} FROM main.js_plugins WHERE name = ?1 LIMIT 1", self.deterministic);
        let rows = self.query(&query, [plugin], |r| {
            let source = r.get_ref(2)?;
            if let ValueRef::Text(bytes) | ValueRef::Blob(bytes) = source {
                if bytes.len() as u64 > max_source_bytes {
                    return Ok(Err(too_large(bytes.len() as u64)));
                }
            }
            let deterministic = is_deterministic(r.get_ref(3)?);
            Ok(row(r.get_ref(0)?, r.get_ref(1)?, source).map(|row| Row { deterministic, ..row }))
        })?;
        Ok(rows.into_iter().next())
    }

    /// Runs one query on the (checked) table.
    fn query<T, P: rusqlite::Params>(
        &self,
        query: &str,
        params: P,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, PluginError> {
        let conn = self.db.connection();
        let mut stmt = conn.prepare(query).map_err(sql("reading js_plugins"))?;
        let rows = stmt.query_map(params, map).and_then(|rows| rows.collect());
        rows.map_err(sql("reading js_plugins"))
    }
}

/// The first `n` words of a SQL statement, upper-cased, past comments and blanks.
fn first_words(sql: &str, n: usize) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = sql;
    while words.len() < n {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, tail)| tail);
        } else if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, tail)| tail);
        } else {
            let end = rest.find(|c: char| !c.is_ascii_alphanumeric() && c != '_').unwrap_or(rest.len());
            if end == 0 {
                break;
            }
            words.push(rest[..end].to_ascii_uppercase());
            rest = &rest[end..];
        }
    }
    words
}

fn sql(what: &'static str) -> impl Fn(rusqlite::Error) -> PluginError {
    move |e| PluginError::Sql(what, e.to_string())
}

/// The row's name, as far as it can be read (its rules are [`check_name`]'s).
pub fn name(value: ValueRef<'_>) -> Result<String, RowProblem> {
    match value {
        ValueRef::Null => Err(RowProblem::NoName),
        ValueRef::Text(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
        other => Err(RowProblem::NameNotText(type_name(other))),
    }
}

pub fn kind(value: ValueRef<'_>) -> Result<PluginKind, RowProblem> {
    match value {
        ValueRef::Text(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            PluginKind::parse(&text).ok_or(RowProblem::UnknownKind(format!("{text:?}")))
        }
        other => Err(RowProblem::UnknownKind(type_name(other).to_owned())),
    }
}

/// A row's kind, argument count and source, checked.
pub fn row(kind_value: ValueRef<'_>, n_args: ValueRef<'_>, source: ValueRef<'_>) -> Result<Row, RowProblem> {
    let kind = kind(kind_value)?;
    let n_args = match n_args {
        // An older table without the NOT NULL: any number.
        ValueRef::Null => -1,
        ValueRef::Integer(n) if n == -1 || (0..=MAX_PLUGIN_ARGS).contains(&n) => n as i32,
        ValueRef::Integer(n) => return Err(RowProblem::ArgumentCountOutOfRange(n.to_string())),
        ValueRef::Real(f) => return Err(RowProblem::ArgumentCountOutOfRange(f.to_string())),
        ValueRef::Text(text) => return Err(RowProblem::ArgumentCountOutOfRange(format!("{:?} (TEXT)", String::from_utf8_lossy(text)))),
        ValueRef::Blob(_) => return Err(RowProblem::ArgumentCountOutOfRange("a BLOB".into())),
    };
    // The shell's readfile() stores BLOBs: take the source as TEXT or BLOB.
    let source = match source {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            std::str::from_utf8(bytes).map_err(|e| RowProblem::SourceNotUtf8(e.valid_up_to()))?
        }
        ValueRef::Null => return Err(RowProblem::NoSource),
        other => return Err(RowProblem::SourceNotText(type_name(other))),
    };
    Ok(Row { kind, n_args, source: source.into(), deterministic: false })
}

/// SQL operators that SQLite implements by calling the function of the same name.
const OPERATOR_FUNCTIONS: [&str; 4] = ["regexp", "match", "glob", "like"];

/// Checks that `name` can be a SQL function of its own on a connection whose other functions
/// (not jsbox's plugins) are `foreign`, lower-cased.
pub fn check_name(name: &str, foreign: &HashSet<String>) -> Result<(), RowProblem> {
    if name.len() > MAX_NAME_BYTES {
        return Err(RowProblem::NameTooLong(name.len()));
    }
    let mut chars = name.chars();
    let identifier =
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !identifier {
        return Err(RowProblem::NotIdentifier(name.to_owned()));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("js_") {
        return Err(RowProblem::Reserved(name.to_owned()));
    }
    if OPERATOR_FUNCTIONS.contains(&lower.as_str()) {
        return Err(RowProblem::Operator(name.to_owned()));
    }
    if foreign.contains(&lower) {
        return Err(RowProblem::Shadows(name.to_owned()));
    }
    Ok(())
}

/// The names of the connection's SQL functions (built-in and the application's), lower-cased.
/// `pragma_function_list` exists from SQLite 3.30 on; where it does not, nothing is known.
pub fn function_names(conn: &Connection) -> HashSet<String> {
    let names = conn.prepare("SELECT DISTINCT lower(name) FROM pragma_function_list").and_then(|mut stmt| {
        stmt.query_map([], |r| r.get::<_, String>(0)).and_then(|rows| rows.collect::<rusqlite::Result<HashSet<String>>>())
    });
    names.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules_and_say_which_is_broken() {
        let foreign: HashSet<String> = ["sum".to_owned()].into();
        assert_eq!(check_name("track_cff2", &foreign), Ok(()));
        assert_eq!(check_name("Sum", &foreign), Err(RowProblem::Shadows("Sum".into())));
        assert_eq!(check_name("LIKE", &foreign), Err(RowProblem::Operator("LIKE".into())));
        assert_eq!(check_name("js_x", &foreign), Err(RowProblem::Reserved("js_x".into())));
        assert_eq!(check_name("2x", &foreign), Err(RowProblem::NotIdentifier("2x".into())));
        assert_eq!(check_name("", &foreign), Err(RowProblem::NotIdentifier("".into())));
        let long = "a".repeat(300);
        assert_eq!(check_name(&long, &foreign), Err(RowProblem::NameTooLong(300)));
        assert_eq!(RowProblem::NameTooLong(300).to_string(), "plugin name is 300 bytes long; SQL function names are at most 255 bytes");
        assert_eq!(check_name(&"a".repeat(255), &foreign), Ok(()));
    }

    #[test]
    fn rows_are_checked_column_by_column() {
        let ok = row(ValueRef::Text(b"window"), ValueRef::Integer(2), ValueRef::Blob(b"x"));
        assert_eq!(ok, Ok(Row { kind: PluginKind::Window, n_args: 2, source: "x".into(), deterministic: false }));
        assert_eq!(row(ValueRef::Text(b"tabel"), ValueRef::Null, ValueRef::Text(b"")), Err(RowProblem::UnknownKind("\"tabel\"".into())));
        assert_eq!(
            row(ValueRef::Text(b"scalar"), ValueRef::Integer(1 << 40), ValueRef::Text(b"")),
            Err(RowProblem::ArgumentCountOutOfRange((1i64 << 40).to_string()))
        );
        assert_eq!(
            row(ValueRef::Text(b"scalar"), ValueRef::Integer(-2), ValueRef::Text(b"")),
            Err(RowProblem::ArgumentCountOutOfRange("-2".into()))
        );
        assert_eq!(row(ValueRef::Text(b"scalar"), ValueRef::Null, ValueRef::Null), Err(RowProblem::NoSource));
        assert_eq!(row(ValueRef::Text(b"scalar"), ValueRef::Null, ValueRef::Blob(b"\xff")), Err(RowProblem::SourceNotUtf8(0)));
        assert_eq!(row(ValueRef::Text(b"scalar"), ValueRef::Null, ValueRef::Integer(1)), Err(RowProblem::SourceNotText("INTEGER")));
    }

    #[test]
    fn comments_and_blanks_do_not_hide_virtual() {
        assert_eq!(first_words("CREATE TABLE x(a)", 2), ["CREATE", "TABLE"]);
        assert_eq!(first_words("create /**/ virtual table x using fts5(a)", 2), ["CREATE", "VIRTUAL"]);
        assert_eq!(first_words("  -- note\n CREATE\n/* a */TABLE\"x\"(a)", 2), ["CREATE", "TABLE"]);
        assert_eq!(first_words("/* unterminated", 2), Vec::<String>::new());
    }
}
