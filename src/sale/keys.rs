//! Redis key names of a sale. All share the hash tag `{sale id}`, so every script touches
//! one cluster slot.

use super::model::SaleId;

/// The keys every sale script takes, in the order `lua/common.lua` names them: the seven of
/// the queue and its holds, the two of the waiting line's departures, then the six of the
/// waitlist. Public for tools that must find a sale's live state (tests, benchmarks clearing
/// up after themselves).
pub fn sale_keys(sale: SaleId) -> Vec<String> {
    let tag = sale.0.simple();
    [
        "sale", "queue", "holds", "res", "owners", "done", "recent", "departed", "leavers", "wl", "wle", "wlidx",
        "wlout", "wlpend", "wlinfo",
    ]
    .iter()
    .map(|part| format!("bo:{{{tag}}}:{part}"))
    .collect()
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
    fn keys_share_one_hash_tag() {
        let sale = SaleId::new();
        let keys = sale_keys(sale);
        assert_eq!(keys.len(), 15);
        assert!(
            keys[14].ends_with(":wlinfo"),
            "the waitlist's info key, where reconcile looks"
        );
        let tag = format!("{{{}}}", sale.0.simple());
        assert!(keys.iter().all(|k| k.contains(&tag)));
    }
}
