//! The promises the run checks once the crowd is done. Any failed check makes the load test
//! exit non-zero.
//!
//! ## The FIFO rule
//!
//! Every answer of the buyer API carries `server_now`, Redis's clock (milliseconds) read inside
//! the script that made the answer; Redis runs one script at a time, so these times order the
//! scripts across all buyers and app instances. For two buyers A and B **who want the same
//! quantity**, where A's join ran at a strictly earlier millisecond than B's, the check fails if
//! B was seen admitted at server time `tB` and A was seen still waiting at a strictly later time
//! `tA > tB`: then, at `tA`, B had been admitted (at or before `tB`) while A, ahead of B in the
//! line, still waited. Pairs whose joins fall in the same millisecond are not decidable and are
//! skipped, as are pairs of different quantities (a shop may let a small order pass a large one
//! that does not fit). The rule assumes Redis's clock does not step backwards during the run.

use std::collections::BTreeMap;

use crate::organizer::{Figures, OrderRow, PRICE_MINOR, ReturnFigures};
use crate::record::BuyerRecord;

/// One check's verdict.
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// Nothing sold beyond capacity: not by the live state, the sale's row, or the orders (less
/// the tickets returned: another order holds those now).
pub fn capacity(figures: &Figures, orders: &[OrderRow], returns: ReturnFigures) -> Check {
    let in_orders: i64 = orders.iter().map(|o| o.quantity).sum::<i64>() - returns.returned;
    let capacity = figures.sale.capacity;
    let most = figures.sold.max(figures.sale.sold).max(in_orders);
    Check {
        name: "not oversold",
        passed: most <= capacity && figures.capacity == capacity,
        detail: format!(
            "capacity {capacity}; sold {} (dashboard), {} (sale row), {in_orders} (sum of orders less returned); \
             at the end {} held, {} waiting",
            figures.sold, figures.sale.sold, figures.held, figures.waiting
        ),
    }
}

/// Postgres (the orders, summed) and the dashboard figures agree, and no order a buyer was
/// given is missing. Returned tickets count for the order that bought them, not their first
/// one; tickets offered for return and not bought yet are unsold for the live sale.
pub fn agreement(figures: &Figures, orders: &[OrderRow], returns: ReturnFigures, buyers: &[BuyerRecord]) -> Check {
    let tickets: i64 = orders.iter().map(|o| o.quantity).sum::<i64>() - returns.returned;
    let revenue: i64 = orders.iter().map(|o| o.total_minor).sum::<i64>() - returns.returned * PRICE_MINOR;
    let told: Vec<i64> = buyers.iter().filter_map(BuyerRecord::bought).collect();
    let mut wrong = Vec::new();
    if figures.sold != tickets - returns.pending {
        wrong.push(format!(
            "dashboard sold {} ≠ {tickets} in orders less {} offered for return",
            figures.sold, returns.pending
        ));
    }
    if figures.sale.sold != tickets {
        wrong.push(format!("sale row sold {} ≠ {tickets} in orders", figures.sale.sold));
    }
    if figures.orders != orders.len() as i64 {
        wrong.push(format!("dashboard orders {} ≠ {} listed", figures.orders, orders.len()));
    }
    if figures.revenue_minor != revenue {
        wrong.push(format!(
            "dashboard revenue {} ≠ {revenue} in orders",
            figures.revenue_minor
        ));
    }
    if revenue != tickets * PRICE_MINOR {
        wrong.push(format!("revenue {revenue} ≠ {tickets} tickets × {PRICE_MINOR}"));
    }
    if (told.len() as i64) > figures.orders {
        wrong.push(format!(
            "buyers got {} orders, Postgres has {}",
            told.len(),
            figures.orders
        ));
    }
    Check {
        name: "Postgres and dashboard agree",
        passed: wrong.is_empty(),
        detail: if wrong.is_empty() {
            format!(
                "{} orders, {tickets} tickets, revenue {revenue}; buyers were given {} orders",
                orders.len(),
                told.len()
            )
        } else {
            wrong.join("; ")
        },
    }
}

/// Admission in the order of joining (the rule in this module's documentation). A run that
/// admitted nobody after a wait compared nothing: that fails too, since the check then could
/// not have failed (the run needs fewer seats at checkout at once than the crowd wants).
pub fn fifo(buyers: &[BuyerRecord]) -> Check {
    let (violations, admitted_compared) = admitted_in_order(buyers, |b| b.join_server_ms);
    Check {
        name: "admitted in FIFO order",
        passed: violations.is_empty() && admitted_compared > 0,
        detail: if violations.is_empty() && admitted_compared == 0 {
            "nothing compared: no buyer was admitted after one who joined before it had been seen waiting".into()
        } else if violations.is_empty() {
            format!("{admitted_compared} admitted buyers compared with everyone of their quantity who joined earlier")
        } else {
            format!(
                "{} violations, first: {}",
                violations.len(),
                violations.first().map(String::as_str).unwrap_or("")
            )
        },
    }
}

/// The rule of this module's documentation for any order of the line: `ahead` is a buyer's
/// rank in it (its join's server time; in the pre-queue scenario, its drawn place), `None`
/// for a buyer outside it. Returns the violations and how many admitted buyers were compared.
pub fn admitted_in_order(buyers: &[BuyerRecord], ahead: impl Fn(&BuyerRecord) -> Option<i64>) -> (Vec<String>, usize) {
    let mut by_quantity: BTreeMap<u8, Vec<(i64, &BuyerRecord)>> = BTreeMap::new();
    for b in buyers {
        if let Some(rank) = ahead(b) {
            by_quantity.entry(b.quantity).or_default().push((rank, b));
        }
    }
    let mut violations = Vec::new();
    let mut admitted_compared = 0usize;
    for group in by_quantity.values_mut() {
        group.sort_by_key(|(rank, _)| *rank);
        // The latest "still waiting" among buyers strictly ahead, and who.
        let mut latest_wait: Option<(i64, usize)> = None;
        let mut i = 0;
        while i < group.len() {
            let rank = group[i].0;
            let same_rank = group[i..].iter().take_while(|(r, _)| *r == rank).count();
            let tie = &group[i..i + same_rank];
            for (_, b) in tie {
                if let (Some(admitted), Some((waited, a))) = (b.admitted_server_ms, latest_wait) {
                    admitted_compared += 1;
                    if admitted < waited {
                        violations.push(format!(
                            "buyer {} (ahead) was waiting at {waited} ms, after buyer {} was admitted at {admitted} ms",
                            a, b.index
                        ));
                    }
                }
            }
            for (_, b) in tie {
                if let Some(w) = b.last_waiting_server_ms
                    && latest_wait.is_none_or(|(t, _)| w > t)
                {
                    latest_wait = Some((w, b.index));
                }
            }
            i += same_rank;
        }
    }
    (violations, admitted_compared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Role;

    fn buyer(index: usize, join: i64, last_wait: Option<i64>, admitted: Option<i64>) -> BuyerRecord {
        let mut b = BuyerRecord::new(index, Role::Buyer, 1);
        b.join_server_ms = Some(join);
        b.last_waiting_server_ms = last_wait;
        b.admitted_server_ms = admitted;
        b
    }

    #[test]
    fn fifo_passes_when_the_earlier_buyer_is_admitted_first() {
        let a = buyer(0, 10, Some(20), Some(30));
        let b = buyer(1, 11, Some(30), Some(40));
        assert!(fifo(&[a, b]).passed);
    }

    #[test]
    fn fifo_fails_when_a_later_buyer_is_admitted_while_an_earlier_one_waits() {
        let a = buyer(0, 10, Some(50), None);
        let b = buyer(1, 11, None, Some(30));
        let check = fifo(&[a, b]);
        assert!(!check.passed, "{}", check.detail);
    }

    #[test]
    fn fifo_skips_pairs_it_cannot_decide() {
        let violations = |a, b| admitted_in_order(&[a, b], |b| b.join_server_ms).0;
        // Joined in the same millisecond: either could be first.
        let a = buyer(0, 10, Some(50), None);
        let b = buyer(1, 10, None, Some(30));
        assert!(violations(a, b).is_empty());
        // Different quantities.
        let a = buyer(0, 10, Some(50), None);
        let mut b = buyer(1, 11, None, Some(30));
        b.quantity = 2;
        assert!(violations(a, b).is_empty());
        // Seen waiting in the same millisecond as the other's admission.
        let a = buyer(0, 10, Some(30), None);
        let b = buyer(1, 11, None, Some(30));
        assert!(fifo(&[a, b]).passed);
    }

    #[test]
    fn fifo_fails_a_run_that_compared_nobody() {
        // Both admitted at once, nobody seen waiting: nothing to compare.
        let a = buyer(0, 10, None, Some(20));
        let b = buyer(1, 11, None, Some(20));
        let check = fifo(&[a, b]);
        assert!(
            !check.passed && check.detail.contains("nothing compared"),
            "{}",
            check.detail
        );
    }

    #[test]
    fn a_returned_ticket_counts_once_for_the_order_holding_it() {
        // Orders of 4 and 2 in a sale of 6; 2 tickets of the first were returned.
        let orders: Vec<OrderRow> = [4, 2]
            .map(|quantity| OrderRow {
                quantity,
                total_minor: quantity * PRICE_MINOR,
            })
            .into();
        let figures = |live, row| Figures {
            capacity: 6,
            sold: live,
            held: 0,
            waiting: 0,
            orders: 2,
            revenue_minor: row * PRICE_MINOR,
            sale: crate::organizer::SaleRecord { capacity: 6, sold: row },
        };
        let bought = ReturnFigures {
            pending: 0,
            returned: 2,
        };
        assert!(agreement(&figures(4, 4), &orders, bought, &[]).passed);
        assert!(capacity(&figures(4, 4), &orders, bought).passed);
        // Counted for both orders: the sale counts the returned tickets as newly sold.
        assert!(!agreement(&figures(6, 6), &orders, bought, &[]).passed);
        // Offered for return, not bought yet: unsold for the live sale, still the row's.
        let pending = ReturnFigures {
            pending: 2,
            returned: 0,
        };
        let one = &orders[..1];
        let one_figures = |live| Figures {
            orders: 1,
            ..figures(live, 4)
        };
        assert!(agreement(&one_figures(2), one, pending, &[]).passed);
        assert!(!agreement(&one_figures(4), one, pending, &[]).passed);
    }
}
