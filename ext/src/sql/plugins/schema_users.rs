//! Which parts of a database's schema call a SQL function: the indexes (expression and partial)
//! and tables (generated columns, CHECK constraints) whose stored values a deterministic
//! plugin computed, and which must not see it change (`js_plugins_in_use`).
//!
//! The schema's SQL is read token by token, as SQLite reads it: comments and string literals are
//! skipped, and quoted identifiers (`"km"`, `[km]`, `` `km` ``) are the names they quote. A call
//! is the name followed by `(`; the same after `TABLE`, `ON`, `REFERENCES`, `INTO`, `EXISTS`,
//! `INDEX`, `VIEW` or `TRIGGER` names a table, not a function.

use rusqlite::Connection;

use crate::error::PluginError;

/// One token of SQL, as far as finding calls needs.
#[derive(Debug, PartialEq)]
enum Token {
    /// An identifier or keyword: its text (unquoted), lower-cased.
    Name(String),
    /// `(`.
    Open,
    /// Anything else (a literal, an operator).
    Other,
}

fn tokens(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let quoted = |i: &mut usize, close: char| -> String {
        let mut text = String::new();
        *i += 1;
        while *i < chars.len() {
            if chars[*i] == close {
                // A doubled closing quote is the quote itself (not for `]`).
                if close != ']' && chars.get(*i + 1) == Some(&close) {
                    text.push(close);
                    *i += 2;
                    continue;
                }
                *i += 1;
                break;
            }
            text.push(chars[*i]);
            *i += 1;
        }
        text
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            _ if c.is_whitespace() => i += 1,
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
            }
            '\'' => {
                quoted(&mut i, '\'');
                tokens.push(Token::Other);
            }
            '"' => tokens.push(Token::Name(quoted(&mut i, '"').to_lowercase())),
            '`' => tokens.push(Token::Name(quoted(&mut i, '`').to_lowercase())),
            '[' => tokens.push(Token::Name(quoted(&mut i, ']').to_lowercase())),
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            _ if c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii() => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$' || !chars[i].is_ascii()) {
                    i += 1;
                }
                tokens.push(Token::Name(chars[start..i].iter().collect::<String>().to_lowercase()));
            }
            _ => {
                tokens.push(Token::Other);
                i += 1;
            }
        }
    }
    tokens
}

/// Whether `sql` calls function `name` (ASCII case ignored, as SQLite does).
pub fn calls(sql: &str, name: &str) -> bool {
    const TABLE_BEFORE: [&str; 8] = ["table", "on", "references", "into", "exists", "index", "view", "trigger"];
    let name = name.to_lowercase();
    let tokens = tokens(sql);
    tokens.iter().enumerate().any(|(i, token)| {
        let after_table_word = i > 0 && matches!(&tokens[i - 1], Token::Name(word) if TABLE_BEFORE.contains(&word.as_str()));
        *token == Token::Name(name.clone()) && tokens.get(i + 1) == Some(&Token::Open) && !after_table_word
    })
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
