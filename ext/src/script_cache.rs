//! The bytecode of the scripts a connection's `js_eval` calls ran, keyed by their source: a
//! script that runs again (on every row of a query, typically) skips QuickJS's parser and
//! compiler, which for a short script on a small input are most of a call's time. Bounded by
//! bytes; when full it starts over (a working set of scripts is a few, and small).

use std::sync::{Arc, Mutex};

use crate::abi::Input;
use crate::bounded_cache::BoundedCache;
use crate::error::CallError;
use crate::sandbox::{self, Limits, Outcome, Script};

/// Source plus bytecode bytes a connection keeps at most.
const MAX_BYTES: usize = 8 << 20;

#[derive(Default)]
pub struct ScriptCache {
    bytecode: BoundedCache<Box<[u8]>, Arc<[u8]>, MAX_BYTES>,
}

impl ScriptCache {
    /// The bytecode `source` compiled to, if this connection compiled it before.
    pub fn get(&self, source: &[u8]) -> Option<Arc<[u8]>> {
        self.bytecode.get(source)
    }

    pub fn insert(&mut self, source: &[u8], bytecode: Vec<u8>) {
        let size = source.len() + bytecode.len();
        self.bytecode.insert(source.into(), bytecode.into(), size);
    }

    /// `sandbox::eval` of `source`, with its bytecode taken from the cache, or put there after
    /// its first run. The lock is not held during the call.
    pub fn eval(cache: &Mutex<ScriptCache>, limits: &Limits, source: &[u8], input: Input<'_>) -> Result<Outcome, CallError> {
        let lock = || cache.lock().unwrap_or_else(|e| e.into_inner());
        let cached = lock().get(source);
        let script = match &cached {
            Some(bytecode) => Script::Bytecode(bytecode),
            None => Script::Source(source),
        };
        let mut outcome = sandbox::eval(limits, script, input)?;
        if let Some(bytecode) = outcome.bytecode.take() {
            lock().insert(source, bytecode);
        }
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
        cache.insert(b"1+1", vec![1, 2, 3]);
        assert_eq!(cache.get(b"1+1").as_deref(), Some(&[1u8, 2, 3][..]));
        assert!(cache.get(b"1+1 ").is_none());
        // Too big for the budget: not kept, and the rest stays.
        cache.insert(b"big", vec![0; MAX_BYTES]);
        assert!(cache.get(b"big").is_none());
        assert_eq!(cache.len(), 1);
        // Filling the budget starts over.
        cache.insert(b"half", vec![0; MAX_BYTES / 2]);
        cache.insert(b"other half", vec![0; MAX_BYTES / 2]);
        assert!(cache.get(b"other half").is_some() && cache.get(b"1+1").is_none());
    }
}
