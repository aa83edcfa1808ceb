//! The estimated wait of the waiting room, from the sale's admission rate (the one the
//! dashboard shows too: `TicketSales::admission_rate_now`, which keeps the poll at one Redis
//! call).

use crate::sale::{Reservation, TicketSales, wait_secs};

/// The sale's admission rate per minute as the waiting room of `r` sees it now.
pub fn admitted_per_minute(sales: &TicketSales, r: &Reservation) -> Option<f64> {
    sales.admission_rate_now(r.code.sale, r.server_now)
}

/// Words for the wait at `position` when `per_minute` buyers are admitted: honest about not
/// knowing.
pub fn describe(per_minute: Option<f64>, position: u64) -> String {
    match wait_secs(per_minute, position) {
        Some(secs) => {
            if secs < 60.0 {
                "less than a minute".into()
            } else {
                let minutes = (secs / 60.0).ceil() as u64;
                if minutes == 1 {
                    "about 1 minute".into()
                } else {
                    format!("about {minutes} minutes")
                }
            }
        }
        _ => "calculating…".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_in_words() {
        assert_eq!(describe(None, 10), "calculating…");
        assert_eq!(describe(Some(0.0), 10), "calculating…");
        assert_eq!(describe(Some(60.0), 30), "less than a minute");
        assert_eq!(describe(Some(60.0), 300), "about 5 minutes");
        assert_eq!(describe(Some(30.0), 31), "about 2 minutes");
    }
}
