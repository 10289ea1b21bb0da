//! FNV-1a, for the maps both sides look up by a short name on every row (the host's plugin
//! worlds, the guest's JSON key atoms). The keys are identifiers and JSON object keys of the
//! database's own data, read one row at a time: SipHash's flooding resistance buys nothing
//! there and costs the most.

use std::hash::{BuildHasherDefault, Hasher};

/// `HashMap<K, V, FnvBuildHasher>`.
pub type FnvBuildHasher = BuildHasherDefault<FnvHasher>;

/// FNV-1a's 64-bit state: the offset basis, then each byte mixed in.
pub struct FnvHasher(u64);

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0100_0000_01b3;

impl Default for FnvHasher {
    fn default() -> Self {
        FnvHasher(OFFSET_BASIS)
    }
}

impl Hasher for FnvHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut hash = self.0;
        for &byte in bytes {
            hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
        }
        self.0 = hash;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use std::hash::Hasher;

    #[test]
    fn matches_the_reference_vectors() {
        // From the FNV reference (draft-eastlake-fnv): FNV-1a 64 of "", "a" and "foobar".
        let hash = |s: &str| {
            let mut h = super::FnvHasher::default();
            h.write(s.as_bytes());
            h.finish()
        };
        assert_eq!(hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash("foobar"), 0x8594_4171_f739_67e8);
    }
}
