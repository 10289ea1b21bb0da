//! Which parts of a database's schema call a SQL function: the indexes (expression and partial)
//! and tables (generated columns, CHECK constraints) whose stored values a deterministic
//! plugin computed, and which must not see it change (`js_plugins_in_use`).
//!
//! The schema's SQL is read token by token (`sql::tokens`, as for the statements `direct` checks):
//! comments and string literals are skipped, and quoted identifiers (`"km"`, `[km]`, `` `km` ``)
//! are the names they quote. A call is the name followed by `(`; the same after `TABLE`, `ON`,
//! `REFERENCES`, `INTO`, `EXISTS`, `INDEX`, `VIEW` or `TRIGGER` names a table, not a function.

use rusqlite::Connection;

use crate::error::PluginError;

/// Whether `sql` calls function `name` (ASCII case ignored, as SQLite does); not a table named
/// like it.
pub fn calls(sql: &str, name: &str) -> bool {
    const TABLE_BEFORE: [&str; 8] = ["table", "on", "references", "into", "exists", "index", "view", "trigger"];
    crate::sql::tokens::calls_unless_after(sql, name, &TABLE_BEFORE)
}

/// The indexes and tables of every schema of the connection (main, temp, attached) whose SQL
/// calls function `name`: `(type, schema.name)`.
pub fn schema_users(conn: &Connection, name: &str) -> Result<Vec<(String, String)>, PluginError> {
    let sql_error = |e: rusqlite::Error| PluginError::Sql("reading the schema", e.to_string());
    let schemas: Vec<String> = conn
        .prepare("SELECT name FROM pragma_database_list")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0)).and_then(|rows| rows.collect()))
        .map_err(sql_error)?;
    let mut users = Vec::new();
    for schema in schemas {
        let quoted = schema.replace('"', "\"\"");
        let query = format!("SELECT type, name, sql FROM \"{quoted}\".sqlite_master WHERE type IN ('index', 'table') AND sql IS NOT NULL");
        let rows: Vec<(String, String, String)> = conn
            .prepare(&query)
            .and_then(|mut stmt| stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).and_then(|rows| rows.collect()))
            .map_err(sql_error)?;
        let shown = |user: &str| if schema == "main" { user.to_owned() } else { format!("{schema}.{user}") };
        users.extend(rows.into_iter().filter(|(_, _, sql)| calls(sql, name)).map(|(kind, user, _)| (kind, shown(&user))));
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_found_however_the_name_is_written() {
        for sql in [
            "CREATE INDEX i ON runs(km(x))",
            "CREATE INDEX i ON runs(\"km\"(x))",
            "CREATE INDEX i ON runs([KM](x))",
            "CREATE INDEX i ON runs(`km` (x))",
            "CREATE INDEX i ON runs(km/**/(x))",
            "CREATE INDEX i ON runs(km -- note\n (x))",
            "CREATE TABLE t(x, y AS (Km(x)) STORED)",
            "CREATE TABLE t(x CHECK (km(x) < 10))",
            "CREATE INDEX i ON t(x) WHERE km(x) > 1",
        ] {
            assert!(calls(sql, "km"), "{sql}");
        }
        for sql in [
            "CREATE TABLE km(id)",
            "CREATE TABLE IF NOT EXISTS km(id)",
            "CREATE INDEX i ON km(id)",
            "CREATE TABLE notes(t TEXT DEFAULT 'see km(x)')",
            "CREATE TABLE t(x REFERENCES km(id))",
            "CREATE INDEX i ON t(kms(x))",
            "CREATE INDEX i ON t(x) -- km(x)\n",
            "CREATE INDEX i ON t(\"k\"\"m\"(x))",
        ] {
            assert!(!calls(sql, "km"), "{sql}");
        }
    }
}
