//! SQL text as tokens, as far as telling a function's call from a mention of its name needs:
//! comments, blanks and the contents of string literals skipped, quoted identifiers (`"x"`,
//! `[x]`, `` `x` ``) taken for the names they quote, parameters (`:x(...)`) never calls. Used to
//! tell which statement called a function (`direct`) and which parts of a schema call a plugin
//! (`plugins::schema_users`).

/// Whether the first token of `sql` is the word `word`.
pub fn first_word_is(sql: &str, word: &str) -> bool {
    matches!(tokens(sql).first(), Some(Token::Word(first)) if first.eq_ignore_ascii_case(word))
}

/// Whether `sql` calls `function`: its name as a token (bare or quoted) followed by `(`.
pub fn calls(sql: &str, function: &str) -> bool {
    calls_unless_after(sql, function, &[])
}

/// The same, not counting the name right after one of the words `not_after` (a table's name is
/// followed by `(` after `CREATE TABLE`).
pub fn calls_unless_after(sql: &str, function: &str, not_after: &[&str]) -> bool {
    let tokens = tokens(sql);
    tokens.windows(2).enumerate().any(|(i, pair)| {
        let after_word = i > 0 && matches!(&tokens[i - 1], Token::Word(word) if not_after.iter().any(|w| word.eq_ignore_ascii_case(w)));
        matches!(pair, [Token::Word(name), Token::Open] if name.eq_ignore_ascii_case(function)) && !after_word
    })
}

#[derive(Debug, PartialEq)]
enum Token {
    /// An identifier or keyword, unquoted.
    Word(String),
    Open,
    /// Anything else (literals, operators, punctuation).
    Other,
}

/// SQL text as tokens, without blanks, comments and the contents of string literals.
fn tokens(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    // The end of a quoted token starting at `i` with `close`, doubled `close` escaping itself.
    let quoted = |i: usize, close: char| -> (String, usize) {
        let mut text = String::new();
        let mut j = i + 1;
        while j < chars.len() {
            if chars[j] == close {
                if chars.get(j + 1) == Some(&close) {
                    text.push(close);
                    j += 2;
                    continue;
                }
                return (text, j + 1);
            }
            text.push(chars[j]);
            j += 1;
        }
        (text, j)
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '\'' {
            i = quoted(i, '\'').1;
            tokens.push(Token::Other);
        } else if c == '"' || c == '`' {
            let (name, end) = quoted(i, c);
            tokens.push(Token::Word(name));
            i = end;
        } else if c == '[' {
            let (name, end) = quoted(i, ']');
            tokens.push(Token::Word(name));
            i = end;
        } else if matches!(c, ':' | '@' | '$' | '#') && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric() || *n == '_') {
            // A parameter (`:name`, `@name`, `$name`, with Tcl-style `::` parts and a `(...)`
            // suffix): one token, never a call.
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '$' | ':')) {
                i += 1;
            }
            if chars.get(i) == Some(&'(') {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
            }
            tokens.push(Token::Other);
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            tokens.push(if c == '(' { Token::Open } else { Token::Other });
            i += 1;
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::calls;

    #[test]
    fn only_a_call_counts_not_a_mention() {
        assert!(calls("SELECT js_config('time_limit_ms', 10)", "js_config"));
        assert!(calls("select JS_CONFIG ( 'x', 1 )", "js_config"));
        assert!(calls("SELECT \"js_config\"('x', 1)", "js_config"));
        assert!(calls("SELECT [js_config]('x', 1), `js_config`('y', 2)", "js_config"));
        assert!(!calls("INSERT INTO t VALUES ('see the js_config( docs')", "js_config"));
        assert!(!calls("INSERT INTO t VALUES (1) /* js_config( */", "js_config"));
        assert!(!calls("INSERT INTO t VALUES (1) -- js_config(\n", "js_config"));
        assert!(!calls("SELECT js_config FROM t", "js_config"));
        assert!(!calls("SELECT my_js_config(1)", "js_config"));
        assert!(!calls("SELECT 'it''s js_config(' , x FROM t", "js_config"));
        assert!(!calls("SELECT 'unterminated js_config(", "js_config"));
        assert!(!calls("INSERT INTO log VALUES (:js_config(x))", "js_config"));
        assert!(!calls("INSERT INTO log VALUES (@js_config(x), $a::js_config(y))", "js_config"));
        assert!(super::first_word_is("  /* x */ pragma integrity_check", "pragma"));
    }
}
