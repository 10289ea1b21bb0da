//! The examples of docs/functions.md and docs/plugins.md run as written, in the sqlite3 shell: every ```sql block in
//! one shell (with `sql/tracks.sql` loaded first, for the examples that use `track_points`), and
//! every statement whose line ends with `-- <result>` must print that result, or fail with that
//! error. A comment that goes on over the next lines describes rather than shows (js_debug's
//! JSON) and is not compared; `(...)` after a result explains it.

use std::process::Command;

use jsbox_tests::*;

/// One statement of an example and what its comment says it gives.
struct Example {
    sql: String,
    /// The script line it starts on (the shell names it in errors).
    line: usize,
    expected: Option<String>,
}

/// The statements of each ```sql block of `markdown`.
fn sql_blocks(markdown: &str) -> Vec<Vec<Example>> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() != "```sql" {
            continue;
        }
        let mut block = Vec::new();
        let mut sql = String::new();
        while let Some(line) = lines.next() {
            if line.trim() == "```" {
                break;
            }
            let (code, comment) = match line.find(" -- ").or_else(|| line.starts_with("-- ").then_some(0)) {
                Some(at) => (&line[..at], Some(line[at..].trim_start().trim_start_matches("--").trim())),
                None => (line, None),
            };
            if !code.trim().is_empty() {
                sql.push_str(code);
                sql.push('\n');
            }
            if code.trim_end().ends_with(';') {
                let continued = lines.peek().is_some_and(|next| next.trim_start().starts_with("--"));
                let expected = comment.filter(|_| !continued).map(|c| c.split(" (").next().unwrap().trim().to_owned());
                block.push(Example { sql: std::mem::take(&mut sql), line: 0, expected });
            }
        }
        blocks.push(block);
    }
    blocks
}

#[test]
fn the_examples_of_functions_md_give_what_they_say() {
    run_examples("docs/functions.md", 5, 10);
}

#[test]
fn the_examples_of_plugins_md_give_what_they_say() {
    run_examples("docs/plugins.md", 4, 8);
}

/// Runs the examples of `doc`, which has at least `min_blocks` blocks and `min_results`
/// statements with a result to compare (fewer: the parser lost them).
fn run_examples(doc: &str, min_blocks: usize, min_results: usize) {
    let markdown = std::fs::read_to_string(repo_root().join(doc)).unwrap();
    let blocks = sql_blocks(&markdown);
    let compared: usize = blocks.iter().flatten().filter(|e| e.expected.is_some()).count();
    assert!(blocks.len() >= min_blocks && compared >= min_results, "{doc}: {} blocks, {compared} results", blocks.len());
    for mut block in blocks {
        // The script: the fixture's table, then one `.print` marker before each statement.
        let mut script = String::from(".read sql/tracks.sql\n");
        for (i, example) in block.iter_mut().enumerate() {
            script.push_str(&format!(".print @@{i}\n"));
            example.line = script.lines().count() + 1;
            script.push_str(&example.sql);
        }
        let file = script_file(&script);
        let out = Command::new("/usr/bin/sqlite3")
            .current_dir(repo_root())
            .args([":memory:", "-cmd", &format!(".load {}", extension_path()), &format!(".read {}", file.display())])
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&file);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        for (i, example) in block.iter().enumerate() {
            // What the statement printed: the lines between its marker and the next one.
            let printed: Vec<&str> = stdout
                .split(&format!("@@{i}\n"))
                .nth(1)
                .map(|rest| rest.split("\n@@").next().unwrap_or("").lines().collect())
                .unwrap_or_default();
            // The shell's error for it, on the line the statement starts: "... near line N: message".
            let error = stderr.lines().find_map(|l| l.split_once(&format!("near line {}: ", example.line)).map(|(_, message)| message));
            match (&example.expected, error) {
                // An error whose message goes on in parentheses (a line, a module) may be shown
                // up to them: what follows ` (` in a comment is not compared.
                (Some(expected), Some(error)) if error.starts_with(&format!("{expected} (")) => {}
                (Some(expected), Some(error)) => assert_eq!(error, expected, "{}", example.sql),
                (Some(expected), None) => assert_eq!(printed.join("\n"), *expected, "{}", example.sql),
                (None, Some(error)) => panic!("{}failed: {error}", example.sql),
                (None, None) => {}
            }
        }
    }
}
