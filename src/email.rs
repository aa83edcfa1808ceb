//! The one rule for what counts as an email address, for buyers and organizers alike.

/// The longest address SMTP can carry.
pub const MAX_BYTES: usize = 254;

/// One `@` with something on both sides, a dot inside the domain, no whitespace or control
/// characters, at most 254 bytes: the server cannot know more without sending mail. Whitespace
/// and control characters have no place in an address, and Postgres refuses a NUL outright:
/// refused here, they never reach it.
pub fn is_plausible(s: &str) -> bool {
    if s.len() > MAX_BYTES || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

/// An address as the shop keeps and compares it: trimmed, lowercased, and plausible by
/// [`is_plausible`]; `None` when it is not. Two spellings of one mailbox that differ only in
/// case or surrounding space are one address.
pub fn normalize(s: &str) -> Option<String> {
    let s = s.trim().to_lowercase();
    is_plausible(&s).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_addresses_ignore_case_and_surrounding_space() {
        assert_eq!(normalize("  Ada@Example.COM ").as_deref(), Some("ada@example.com"));
        assert_eq!(normalize("a b@c.de"), None);
    }

    #[test]
    fn plausible_addresses() {
        for good in ["a@b.co", "ada.lovelace+tickets@mail.example.com"] {
            assert!(is_plausible(good), "{good}");
        }
        let long = format!("{}@b.co", "x".repeat(300));
        for bad in [
            "", "@b.co", "a@", "a@b", "a@.b", "a@b.", "a b@c.de", "a@b@c.de", "a\0@b.co", &long,
        ] {
            assert!(!is_plausible(bad), "{bad:?}");
        }
    }
}
