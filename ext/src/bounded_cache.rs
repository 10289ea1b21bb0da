//! A map bounded by the bytes of what it holds: when an insertion would pass `MAX` bytes it
//! starts over, and an entry bigger than `MAX` is not kept. The policy of jsbox's compiled-code
//! caches ([`crate::script_cache`], the plugin registry's), whose working sets are a few entries.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

pub struct BoundedCache<K, V, const MAX: usize> {
    map: HashMap<K, V>,
    bytes: usize,
}

impl<K, V, const MAX: usize> Default for BoundedCache<K, V, MAX> {
    fn default() -> Self {
        BoundedCache { map: HashMap::new(), bytes: 0 }
    }
}

impl<K: Hash + Eq, V: Clone, const MAX: usize> BoundedCache<K, V, MAX> {
    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.map.get(key).cloned()
    }

    /// Keeps `value`, which with its key takes `size` bytes.
    pub fn insert(&mut self, key: K, value: V, size: usize) {
        if size > MAX {
            return;
        }
        if self.bytes + size > MAX {
            self.map.clear();
            self.bytes = 0;
        }
        if self.map.insert(key, value).is_none() {
            self.bytes += size;
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_over_when_full_and_never_keeps_what_is_too_big() {
        let mut cache: BoundedCache<&str, u32, 10> = BoundedCache::default();
        cache.insert("a", 1, 4);
        cache.insert("b", 2, 4);
        assert_eq!((cache.get("a"), cache.get("b"), cache.len()), (Some(1), Some(2), 2));
        cache.insert("huge", 3, 11);
        assert_eq!((cache.get("huge"), cache.len()), (None, 2));
        cache.insert("c", 4, 4);
        assert_eq!((cache.get("a"), cache.get("c"), cache.len()), (None, Some(4), 1));
    }
}
