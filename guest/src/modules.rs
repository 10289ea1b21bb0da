//! Modules from the database's `js_modules` table, as QuickJS sees them.
//!
//! The guest cannot read the database. The host gives an instance the modules it needs as
//! bytecode ([`add`]); `import` finds them here through the runtime's resolver and loader, and
//! nothing else can be imported. An `import` of a module the instance was not given fails, and
//! the call's error is [`ErrorKind::ModuleMissing`] naming it ([`take_missing`]): the host then
//! reads that module from the table, compiles it ([`compile`]) and tries again.
//!
//! A stored module is an ES module, or a CommonJS/UMD bundle (`ModuleKind::CommonJs`), which is
//! turned into an ES module whose default export is its `module.exports` and whose named exports
//! are that object's keys, so that `import * as turf from 'turf'` works on `turf.min.js` as
//! published.

use std::cell::RefCell;
use std::collections::HashMap;

use jsbox_abi::{named_bytes, ErrorKind, ModuleKind};
use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::{Array, Ctx, Exception, Function, Module, Value, WriteOptions};

use crate::error::GuestError;

thread_local! {
    /// Bytecode of the modules this instance was given, by name. Entries are never replaced nor
    /// removed: QuickJS reads module bytecode in place (`JS_READ_OBJ_ROM_DATA`).
    static MODULES: RefCell<HashMap<String, Vec<u8>>> = RefCell::new(HashMap::new());
    /// The module the last failed import asked for, if it was not given.
    static MISSING: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Longest module name (as for plugin names, SQLite's identifier limit).
pub const MAX_NAME_BYTES: usize = 255;

/// Adds the modules of an encoded [`named_bytes`] list (name, bytecode) to this instance.
pub fn add(request: &[u8]) -> Result<(), GuestError> {
    let entries = named_bytes::decode(request).map_err(|e| GuestError::new(ErrorKind::Abi, e.to_string()))?;
    MODULES.with_borrow_mut(|modules| {
        for (name, bytecode) in entries {
            modules.entry(name.to_owned()).or_insert_with(|| bytecode.to_vec());
        }
    });
    Ok(())
}

/// Forgets which module the last call missed (at the start of every call).
pub fn clear_missing() {
    MISSING.with_borrow_mut(|missing| *missing = None);
}

/// Whether an import of this call asked for a module it was not given.
pub fn has_missing() -> bool {
    MISSING.with_borrow(Option::is_some)
}

/// The module an import of the last call asked for and did not find.
pub fn take_missing() -> Option<String> {
    MISSING.with_borrow_mut(Option::take)
}

/// Resolves an import's specifier against the importing module's name: `./x` and `../x` are
/// relative to its folder (names may contain `/`), anything else is a module's name as stored.
pub struct TableResolver;

impl Resolver for TableResolver {
    fn resolve<'js>(&mut self, ctx: &Ctx<'js>, base: &str, name: &str, _: Option<ImportAttributes<'js>>) -> rquickjs::Result<String> {
        resolve_name(base, name).map_err(|message| Exception::throw_reference(ctx, &message))
    }
}

fn resolve_name(base: &str, name: &str) -> Result<String, String> {
    if !(name.starts_with("./") || name.starts_with("../")) {
        return Ok(name.to_owned());
    }
    let mut parts: Vec<&str> = base.split('/').collect();
    parts.pop();
    for part in name.split('/') {
        match part {
            "." => {}
            ".." if parts.pop().is_some() => {}
            ".." => return Err(format!("import '{name}' from '{base}' leads outside the module names")),
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// Loads an imported module from this instance's table.
pub struct TableLoader;

impl Loader for TableLoader {
    fn load<'js>(&mut self, ctx: &Ctx<'js>, name: &str, _: Option<ImportAttributes<'js>>) -> rquickjs::Result<Module<'js>> {
        if name.len() > MAX_NAME_BYTES {
            // No row can have that name: not worth asking the host for.
            return Err(Exception::throw_reference(
                ctx,
                &format!("a module name of {} bytes: names have at most {MAX_NAME_BYTES}", name.len()),
            ));
        }
        let loaded = MODULES.with_borrow(|modules| {
            modules.get(name).map(|bytecode| {
                // SAFETY: the bytecode was made by `compile` of this same guest, and stays in
                // MODULES (never moved nor freed) for the instance's lifetime.
                unsafe { Module::load(ctx.clone(), bytecode) }
            })
        });
        match loaded {
            Some(module) => module,
            None => {
                MISSING.with_borrow_mut(|missing| *missing = Some(name.to_owned()));
                Err(Exception::throw_reference(ctx, &format!("module '{name}' is not in js_modules")))
            }
        }
    }
}

/// Compiles stored module `name` (an encoded [`named_bytes`] entry: name, source) of `kind`
/// into ES module bytecode, appended to `out`. Its imports must be in the table already.
pub fn compile(ctx: &Ctx<'_>, request: &[u8], kind: ModuleKind, out: &mut Vec<u8>) -> Result<(), GuestError> {
    let entries = named_bytes::decode(request).map_err(|e| GuestError::new(ErrorKind::Abi, e.to_string()))?;
    let [(name, source)] = entries[..] else { return Err(GuestError::new(ErrorKind::Abi, "one module per compile request")) };
    if name.is_empty() || name.len() > MAX_NAME_BYTES || name.contains('\0') || name.starts_with(['.', '/']) {
        return Err(GuestError::new(ErrorKind::Script, "a module name has 1 to 255 bytes and does not start with '.' or '/'"));
    }
    if source.contains(&0) {
        return Err(GuestError::new(ErrorKind::Script, "module source contains a NUL character"));
    }
    let source = std::str::from_utf8(source).map_err(|_| GuestError::new(ErrorKind::Script, "module source is not UTF-8"))?;
    let text = match kind {
        ModuleKind::Module => source.to_owned(),
        ModuleKind::CommonJs => commonjs_as_module(ctx, name, source)?,
    };
    let js_error = |e| GuestError::from_js(ctx, e);
    let module = Module::declare(ctx.clone(), name, text).map_err(js_error)?;
    out.extend_from_slice(&module.write(WriteOptions::default()).map_err(js_error)?);
    Ok(())
}

/// The text of an ES module that runs CommonJS `source` as a function of `exports`, `module`
/// and `require` (which throws: a bundle carries its dependencies) and exports what it leaves in
/// `module.exports`. The source starts on the first line and keeps its line numbers; the
/// names to export are learned by running it once here (in the compiling instance, thrown away).
fn commonjs_as_module(ctx: &Ctx<'_>, name: &str, source: &str) -> Result<String, GuestError> {
    const REQUIRE: &str = "function (name) { throw new Error(\"require('\" + name + \"'): jsbox modules are imported (bundle the dependency, or store it as an ES module)\"); }";
    let factory = format!("(function (exports, module, require) {{{source}\n}})");
    let js_error = |e| GuestError::from_js(ctx, e);
    let factory: Function = crate::script::eval_global(ctx, &factory, name)?
        .into_function()
        .ok_or_else(|| GuestError::new(ErrorKind::Script, "the CommonJS wrapper did not compile to a function"))?;
    let exported_keys = format!(
        "(function (factory) {{ const module = {{ exports: {{}} }}; factory.call(module.exports, module.exports, module, {REQUIRE}); \
         const e = module.exports; return e !== null && (typeof e === 'object' || typeof e === 'function') ? Object.keys(e) : []; }})"
    );
    let keys: Function = crate::script::eval_global(ctx, &exported_keys, "<jsbox>")?.into_function().expect("a function expression");
    let keys: Array = keys.call((factory,)).map_err(js_error)?;
    let names: Vec<String> =
        keys.iter::<Value>().filter_map(|key| key.ok()?.as_string()?.to_string().ok()).filter(|key| is_export_name(key)).collect();
    let mut text = format!("const __jsbox_module = {{ exports: {{}} }}; (function (exports, module, require) {{{source}\n}}).call(__jsbox_module.exports, __jsbox_module.exports, __jsbox_module, {REQUIRE});\nexport default __jsbox_module.exports;\n");
    if !names.is_empty() {
        text.push_str(&format!("export const {{ {} }} = __jsbox_module.exports;\n", names.join(", ")));
    }
    Ok(text)
}

/// Whether `key` can be exported by name with `export const { key }`: an ASCII identifier
/// that is not a reserved word (other keys stay reachable through the default export).
fn is_export_name(key: &str) -> bool {
    const RESERVED: &[&str] = &[
        "arguments",
        "await",
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "debugger",
        "default",
        "delete",
        "do",
        "else",
        "enum",
        "eval",
        "export",
        "extends",
        "false",
        "finally",
        "for",
        "function",
        "if",
        "implements",
        "import",
        "in",
        "instanceof",
        "interface",
        "let",
        "new",
        "null",
        "package",
        "private",
        "protected",
        "public",
        "return",
        "static",
        "super",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "typeof",
        "var",
        "void",
        "while",
        "with",
        "yield",
        "__jsbox_module",
    ];
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && !RESERVED.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_names_resolve_against_the_importer() {
        assert_eq!(resolve_name("script", "turf").unwrap(), "turf");
        assert_eq!(resolve_name("geo/length", "./units").unwrap(), "geo/units");
        assert_eq!(resolve_name("geo/a/length", "../units").unwrap(), "geo/units");
        assert_eq!(resolve_name("script", "./helpers").unwrap(), "helpers");
        assert!(resolve_name("script", "../up").is_err());
    }

    #[test]
    fn only_plain_identifiers_are_named_exports() {
        assert!(is_export_name("length") && is_export_name("$x") && is_export_name("_a1"));
        assert!(!is_export_name("default") && !is_export_name("delete") && !is_export_name("a-b") && !is_export_name("1a"));
    }
}
