//! The bytecode of the scripts a connection's `js_eval` calls ran, keyed by their source: a
//! script that runs again (on every row of a query, typically) skips QuickJS's parser and
//! compiler, which for a short script on a small input are most of a call's time. Bounded by
//! bytes; when full it starts over (a working set of scripts is a few, and small).
//!
//! A script that imports also keeps the names of the modules it needed, so that its next call
//! starts with their current versions (read from `js_modules` at every call) rather than
//! finding them one by one.

use std::sync::{Arc, Mutex};

use crate::abi::Input;
use crate::bounded_cache::BoundedCache;
use crate::error::CallError;
use crate::modules::{Imports, ModuleSet};
use crate::sandbox::{self, Outcome, Script};

/// A script as compiled, and the modules it imported last time it ran.
pub struct CachedScript {
    bytecode: Vec<u8>,
    modules: Vec<String>,
}

/// Source plus bytecode bytes a connection keeps at most.
const MAX_BYTES: usize = 8 << 20;

#[derive(Default)]
pub struct ScriptCache {
    bytecode: BoundedCache<Box<[u8]>, Arc<CachedScript>, MAX_BYTES>,
}

impl ScriptCache {
    /// What `source` compiled to, if this connection compiled it before.
    pub fn get(&self, source: &[u8]) -> Option<Arc<CachedScript>> {
        self.bytecode.get(source)
    }

    pub fn insert(&mut self, source: &[u8], bytecode: Vec<u8>, modules: Vec<String>) {
        let size = source.len() + bytecode.len() + modules.iter().map(String::len).sum::<usize>();
        self.bytecode.insert(source.into(), Arc::new(CachedScript { bytecode, modules }), size);
    }

    /// `sandbox::eval` of `source`, with its bytecode taken from the cache, or put there after
    /// its first run, and the modules it imports (and the limits) from `imports`. The lock is
    /// not held during the call.
    pub fn eval(cache: &Mutex<ScriptCache>, source: &[u8], input: Input<'_>, imports: &mut Imports<'_>) -> Result<Outcome, CallError> {
        let lock = || cache.lock().unwrap_or_else(|e| e.into_inner());
        let cached = lock().get(source);
        let start = match &cached {
            Some(script) if !script.modules.is_empty() => imports.current(&script.modules)?,
            _ => ModuleSet::default(),
        };
        let mut compiled: Option<Vec<u8>> = None;
        let (mut outcome, modules) = imports.resolve(start, |modules, limits| {
            let script = match (&cached, &compiled) {
                (Some(script), _) => Script::Bytecode(&script.bytecode),
                (None, Some(bytecode)) => Script::Bytecode(bytecode),
                (None, None) => Script::Source(source),
            };
            let mut outcome = sandbox::eval(limits, script, source, input, modules)?;
            if let Some(bytecode) = outcome.bytecode.take() {
                compiled = Some(bytecode);
            }
            match outcome.value {
                // An import it was not given: fetched, and the call runs again.
                Err(CallError::ModuleMissing(name)) => Err(CallError::ModuleMissing(name)),
                _ => Ok(outcome),
            }
        })?;
        let names: Vec<String> = modules.iter().map(|module| module.row.name.clone()).collect();
        match (compiled, &cached) {
            (Some(bytecode), _) => lock().insert(source, bytecode, names),
            (None, Some(script)) if script.modules != names => lock().insert(source, script.bytecode.clone(), names),
            _ => {}
        }
        outcome.bytecode = None;
        Ok(outcome)
    }

    /// Scripts cached now, for `js_debug()`.
    pub fn len(&self) -> usize {
        self.bytecode.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytecode.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_bytecode_by_exact_source_within_its_budget() {
        let mut cache = ScriptCache::default();
        cache.insert(b"1+1", vec![1, 2, 3], vec![]);
        assert_eq!(cache.get(b"1+1").map(|s| s.bytecode.clone()), Some(vec![1u8, 2, 3]));
        assert!(cache.get(b"1+1 ").is_none());
        // Too big for the budget: not kept, and the rest stays.
        cache.insert(b"big", vec![0; MAX_BYTES], vec![]);
        assert!(cache.get(b"big").is_none());
        assert_eq!(cache.len(), 1);
        // Filling the budget starts over.
        cache.insert(b"half", vec![0; MAX_BYTES / 2], vec![]);
        cache.insert(b"other half", vec![0; MAX_BYTES / 2], vec![]);
        assert!(cache.get(b"other half").is_some() && cache.get(b"1+1").is_none());
    }
}
