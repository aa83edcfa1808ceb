//! Amounts as people read them. Amounts travel as integers in minor units (cents); these are
//! the only places that turn them into text.

/// Minor units as a decimal with two places, for forms and tables: `25.50`, `-0.05`.
pub fn decimal(minor: i64) -> String {
    // The sign on its own: `-5 / 100` is 0, which has none.
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!("{sign}{}.{:02}", m / 100, m % 100)
}

/// Money as a buyer reads it: `€25.00`, `-€0.05`, or `25.00 CHF` for currencies without a sign
/// here.
pub fn money(minor: i64, currency: &str) -> String {
    let text = decimal(minor);
    let (sign, amount) = match text.strip_prefix('-') {
        Some(amount) => ("-", amount),
        None => ("", text.as_str()),
    };
    match currency {
        "EUR" => format!("{sign}€{amount}"),
        "USD" => format!("{sign}${amount}"),
        "GBP" => format!("{sign}£{amount}"),
        _ => format!("{sign}{amount} {currency}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_like_a_price() {
        assert_eq!(money(2500, "EUR"), "€25.00");
        assert_eq!(money(5, "USD"), "$0.05");
        assert_eq!(money(123456, "CHF"), "1234.56 CHF");
        assert_eq!(decimal(2550), "25.50");
        assert_eq!(decimal(5), "0.05");
    }

    #[test]
    fn negative_amounts_below_one_unit_keep_their_sign() {
        assert_eq!(decimal(-5), "-0.05");
        assert_eq!(decimal(-99), "-0.99");
        assert_eq!(decimal(-250), "-2.50");
        assert_eq!(money(-5, "EUR"), "-€0.05");
        assert_eq!(money(-50, "CHF"), "-0.50 CHF");
        assert_eq!(money(-1250, "USD"), "-$12.50");
    }
}
