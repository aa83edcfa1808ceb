//! Redis key names of a sale. All share the hash tag `{sale id}`, so every script touches
//! one cluster slot.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use fred::types::Key;

use super::model::SaleId;

/// One of a sale's Redis keys, in the order `lua/common.lua` takes them as KEYS: the eight of
/// the queue and its holds, the two of the waiting line's departures, then the six of the
/// waitlist. Named, so that code reading one key alone never counts positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaleKey {
    Sale,
    /// The queue: a bit per arrival number, set while that buyer waits.
    QueueBits,
    /// The code of every arrival, 16 bytes at `seq * 16`.
    QueueCodes,
    Holds,
    Res,
    Owners,
    Done,
    Recent,
    Departed,
    Leavers,
    Waitlist,
    WaitlistEntries,
    WaitlistIndex,
    WaitlistOffers,
    WaitlistPending,
    WaitlistInfo,
}

impl SaleKey {
    /// Every key, in KEYS order.
    pub const ALL: [SaleKey; 16] = [
        SaleKey::Sale,
        SaleKey::QueueBits,
        SaleKey::QueueCodes,
        SaleKey::Holds,
        SaleKey::Res,
        SaleKey::Owners,
        SaleKey::Done,
        SaleKey::Recent,
        SaleKey::Departed,
        SaleKey::Leavers,
        SaleKey::Waitlist,
        SaleKey::WaitlistEntries,
        SaleKey::WaitlistIndex,
        SaleKey::WaitlistOffers,
        SaleKey::WaitlistPending,
        SaleKey::WaitlistInfo,
    ];

    /// The key's last part, as `lua/common.lua` names it in its table `K`.
    pub fn part(self) -> &'static str {
        match self {
            SaleKey::Sale => "sale",
            SaleKey::QueueBits => "qbits",
            SaleKey::QueueCodes => "qcodes",
            SaleKey::Holds => "holds",
            SaleKey::Res => "res",
            SaleKey::Owners => "owners",
            SaleKey::Done => "done",
            SaleKey::Recent => "recent",
            SaleKey::Departed => "departed",
            SaleKey::Leavers => "leavers",
            SaleKey::Waitlist => "wl",
            SaleKey::WaitlistEntries => "wle",
            SaleKey::WaitlistIndex => "wlidx",
            SaleKey::WaitlistOffers => "wlout",
            SaleKey::WaitlistPending => "wlpend",
            SaleKey::WaitlistInfo => "wlinfo",
        }
    }
}

/// The Redis key `key` of `sale`.
pub fn sale_key(sale: SaleId, key: SaleKey) -> String {
    format!("bo:{{{}}}:{}", sale.0.simple(), key.part())
}

/// The keys every sale script takes, in the order `lua/common.lua` names them ([`SaleKey::ALL`]).
/// Public for tools that must find a sale's live state (tests, benchmarks clearing up after
/// themselves).
pub fn sale_keys(sale: SaleId) -> Vec<String> {
    SaleKey::ALL.iter().map(|&key| sale_key(sale, key)).collect()
}

/// Each sale's keys as a script call takes them, made once: every call passes all sixteen, and
/// formatting them anew was seventeen allocations a call. Holds at most [`KeyCache::SALES`]
/// sales; when full it starts over, so that calls for made-up sale ids (a request can name any)
/// never grow it.
#[derive(Default)]
pub(crate) struct KeyCache(RwLock<HashMap<SaleId, Arc<[Key]>>>);

impl KeyCache {
    const SALES: usize = 1024;

    /// The keys of `sale`, in KEYS order.
    pub fn keys(&self, sale: SaleId) -> Vec<Key> {
        if let Some(keys) = self.0.read().unwrap_or_else(PoisonError::into_inner).get(&sale) {
            return keys.to_vec();
        }
        let keys: Vec<Key> = sale_keys(sale).into_iter().map(Key::from).collect();
        let mut cache = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= Self::SALES {
            cache.clear();
        }
        cache.insert(sale, keys.as_slice().into());
        keys
    }
}

/// Marks a join proof of work (`src/pow.rs`) as used, by its challenge's nonce; it lives as
/// long as the challenge could still be used.
pub fn used_proof_key(sale: SaleId, nonce: &str) -> String {
    format!("bo:{{{}}}:pow:{nonce}", sale.0.simple())
}

/// The count of join requests of a sale in one minute of Unix time (`unix seconds / 60`),
/// which sets the proof of work's difficulty.
pub fn joins_in_minute_key(sale: SaleId, minute: i64) -> String {
    format!("bo:{{{}}}:joins:{minute}", sale.0.simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_gives_each_sale_its_keys_and_stays_bounded() {
        let cache = KeyCache::default();
        let sale = SaleId::new();
        let as_text = |keys: Vec<Key>| keys.iter().map(|k| k.as_str().unwrap().to_string()).collect::<Vec<_>>();
        assert_eq!(as_text(cache.keys(sale)), sale_keys(sale));
        assert_eq!(as_text(cache.keys(sale)), sale_keys(sale), "the same, from the cache");
        for _ in 0..2 * KeyCache::SALES {
            let other = SaleId::new();
            assert_eq!(as_text(cache.keys(other)), sale_keys(other));
        }
        assert!(cache.0.read().unwrap().len() <= KeyCache::SALES);
    }

    #[test]
    fn keys_share_one_hash_tag_in_the_order_of_their_names() {
        let sale = SaleId::new();
        let keys = sale_keys(sale);
        assert_eq!(keys.len(), SaleKey::ALL.len());
        for (i, key) in SaleKey::ALL.iter().enumerate() {
            assert_eq!(keys[i], sale_key(sale, *key));
            assert!(keys[i].ends_with(&format!(":{}", key.part())));
        }
        let tag = format!("{{{}}}", sale.0.simple());
        assert!(keys.iter().all(|k| k.contains(&tag)));
    }

    /// The table `K` of `lua/common.lua` takes each key from the KEYS position its name has here.
    #[test]
    fn common_lua_reads_each_key_where_it_is_passed() {
        let common = include_str!("../../lua/common.lua");
        for (i, key) in SaleKey::ALL.iter().enumerate() {
            let entry = format!("{} = KEYS[{}]", key.part(), i + 1);
            assert!(common.contains(&entry), "common.lua lacks `{entry}`");
        }
    }
}
