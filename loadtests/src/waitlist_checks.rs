//! The sold-out scenario's checks: the tickets that came back after the sell-out went down
//! the waitlist in order, no ticket was offered twice, every offer ended bought or lapsed, and
//! every ticket a buyer returned ended bought by another order or still its returner's.
//!
//! ## What the checks know
//!
//! From Postgres (the organizer's list of entries): each entry's place in line (`rank`), its
//! quantity and its state at the end. From the buyers' records, in Redis's clock (the
//! `server_now` of the answers, which orders all scripts): when each entry joined, when it was
//! last seen waiting, the offer its buyer saw (its expiry; Redis made it the offer window
//! before), and for every order the last time it was seen unbought (admitted, or offered) and
//! the first time it was seen confirmed. So the tickets sold at a server time `t` are bounded:
//! `sold_max(t)` counts every order not seen unbought after `t` (and any order no buyer
//! reported), `sold_min(t)` the orders seen confirmed before `t`. The capacity is the raised
//! one for certain once a buyer's request sent after the raise returned was answered, and at
//! most the raised one at any time. A return (`--return-share`) ran between the server times
//! of its returner's answers just before and just after it: `sold_min(t)` subtracts the
//! tickets of every return that may have run by `t`, `sold_max(t)` those of the returns
//! surely run before `t`, so the rules below hold the returned tickets to the same order.
//!
//! ## The rules
//!
//! - **In order.** An offer to entry B at `t` is out of order when an entry A ahead of B in
//!   line (lower rank) surely waited at `t` (joined before, seen waiting after) and surely
//!   could fit: its quantity at most `capacity_min(t) - sold_max(t)`. The shop passes over
//!   only an entry that wants more than all the unsold tickets. Pairs where A surely could not
//!   fit are counted as rightly passed over; the rest as undecided. And at the end, with
//!   nothing held, no entry may wait that fits in the unsold tickets: those would be tickets
//!   that came back and went to nobody.
//! - **Offered once.** No buyer saw two offers for its entry; and at the moment of each offer,
//!   the offers surely holding tickets then (from when made to when last seen offered) plus
//!   `sold_min` are at most the capacity: no ticket held for two offers at once.
//! - **Bought or lapsed.** At the end no entry is still offered; an offer its buyer bought is
//!   a taken entry, one it let go (or failed to buy) a lapsed entry, and no other entry is
//!   taken.
//! - **Returns settled.** The shop took every return asked; the organizer API's returned
//!   tickets (bought by another order) and pending ones (still the returner's) add up to the
//!   tickets returned, and the sale's row counts each ticket once: the orders' quantities less
//!   the returned tickets.

use std::collections::HashMap;

use crate::checks::Check;
use crate::organizer::{EntryRow, Figures, OrderRow, ReturnFigures};
use crate::record::{BuyerRecord, Outcome, WaitlistRecord};

/// What the run did to the sale.
pub struct Plan {
    /// Capacity before the organizer's raise, and after it.
    pub capacity: i64,
    pub raised_to: i64,
    /// The offer window in milliseconds.
    pub offer_ms: i64,
}

/// Bounds on the tickets sold at a server time, from the orders' and the returns' times. A
/// return makes its tickets unsold for the live sale, and the order that buys them counts
/// them again: sold at `t` is the orders confirmed by `t` less the tickets returned by `t`.
struct Sold {
    /// (last seen unbought, quantity) of every order a buyer reported.
    unbought: Vec<(i64, i64)>,
    /// (first seen confirmed, quantity), where seen.
    confirmed: Vec<(i64, i64)>,
    /// Tickets in orders no buyer can place in time.
    unplaced: i64,
    /// (ran after, ran before (when seen), tickets) of every return the shop took.
    returns: Vec<(i64, Option<i64>, i64)>,
}

impl Sold {
    fn new(buyers: &[BuyerRecord], tickets_in_orders: i64) -> Sold {
        let mut sold = Sold {
            unbought: Vec::new(),
            confirmed: Vec::new(),
            unplaced: tickets_in_orders,
            returns: Vec::new(),
        };
        for b in buyers {
            if let Some(r) = b.returned.as_ref().filter(|r| r.refused.is_none()) {
                sold.returns.push((r.after_ms, r.before_ms, r.tickets));
            }
            let Some(qty) = b.bought() else { continue };
            let offer = b.waitlist.as_ref().and_then(|w| w.offer);
            if let Some(before) = offer.map(|o| o.last_seen_ms).or(b.admitted_server_ms) {
                sold.unbought.push((before, qty));
                sold.unplaced -= qty;
            }
            if let Some(after) = b.order_seen_server_ms {
                sold.confirmed.push((after, qty));
            }
        }
        sold.unplaced = sold.unplaced.max(0);
        sold
    }

    /// At most this many sold at `t`: an order seen unbought in the same millisecond may
    /// have been confirmed before a script of that millisecond; only returns surely run
    /// before `t` count.
    fn max(&self, t: i64) -> i64 {
        let returned: i64 = self
            .returns
            .iter()
            .filter(|(_, before, _)| before.is_some_and(|b| b < t))
            .map(|(_, _, n)| n)
            .sum();
        self.unplaced
            + self
                .unbought
                .iter()
                .filter(|(at, _)| *at <= t)
                .map(|(_, q)| q)
                .sum::<i64>()
            - returned
    }

    /// At least this many sold at `t`: every return that may have run by `t` counts.
    fn min(&self, t: i64) -> i64 {
        let returned: i64 = self
            .returns
            .iter()
            .filter(|(after, _, _)| *after <= t)
            .map(|(_, _, n)| n)
            .sum();
        self.confirmed
            .iter()
            .filter(|(at, _)| *at < t)
            .map(|(_, q)| q)
            .sum::<i64>()
            - returned
    }
}

/// One offer as its buyer saw it, placed in line.
struct Offer {
    buyer: usize,
    rank: i64,
    quantity: i64,
    made_ms: i64,
    last_seen_ms: i64,
}

/// The waitlist as the checks see it: entries by email, buyers' offers and waits.
struct Seen<'a> {
    entries: HashMap<&'a str, &'a EntryRow>,
    offers: Vec<Offer>,
    /// Buyers with their entry: (buyer, record, entry).
    waits: Vec<(usize, &'a WaitlistRecord, &'a EntryRow)>,
    /// The capacity was raised for certain after this server time.
    raised_after_ms: Option<i64>,
}

impl<'a> Seen<'a> {
    fn new(buyers: &'a [BuyerRecord], entries: &'a [EntryRow], plan: &Plan) -> Seen<'a> {
        let by_email: HashMap<&str, &EntryRow> = entries.iter().map(|e| (e.email.as_str(), e)).collect();
        let mut seen = Seen {
            entries: by_email,
            offers: Vec::new(),
            waits: Vec::new(),
            raised_after_ms: buyers
                .iter()
                .filter_map(|b| b.waitlist.as_ref()?.after_raise_server_ms)
                .min(),
        };
        for b in buyers {
            let Some(w) = &b.waitlist else { continue };
            let Some(entry) = seen.entries.get(w.email.as_str()).copied() else {
                continue;
            };
            seen.waits.push((b.index, w, entry));
            if let Some(o) = w.offer {
                seen.offers.push(Offer {
                    buyer: b.index,
                    rank: entry.rank,
                    quantity: entry.quantity,
                    made_ms: o.expires_ms - plan.offer_ms,
                    last_seen_ms: o.last_seen_ms,
                });
            }
        }
        seen.offers.sort_by_key(|o| o.made_ms);
        seen
    }

    fn capacity_min(&self, plan: &Plan, t: i64) -> i64 {
        match self.raised_after_ms {
            Some(r) if t > r => plan.raised_to,
            _ => plan.capacity,
        }
    }
}

/// Every offer went to the earliest entry that could fit (the rule in this module's
/// documentation), and no tickets were left free while an entry that fits waited.
pub fn in_order(
    buyers: &[BuyerRecord],
    entries: &[EntryRow],
    figures: &Figures,
    tickets_in_orders: i64,
    plan: &Plan,
) -> Check {
    let seen = Seen::new(buyers, entries, plan);
    let sold = Sold::new(buyers, tickets_in_orders);
    let (mut ahead, mut passed_over, mut undecided) = (0usize, 0usize, 0usize);
    let mut wrong = Vec::new();
    for offer in &seen.offers {
        let t = offer.made_ms;
        for (a, w, entry) in &seen.waits {
            if entry.rank >= offer.rank || w.joined_server_ms >= t {
                continue;
            }
            ahead += 1;
            if w.last_waiting_server_ms.is_none_or(|last| last <= t) {
                continue;
            }
            if entry.quantity <= seen.capacity_min(plan, t) - sold.max(t) {
                wrong.push(format!(
                    "buyer {} was offered {} at {t} ms while buyer {a}, ahead of it, waited for {} that could fit",
                    offer.buyer, offer.quantity, entry.quantity
                ));
            } else if entry.quantity > plan.raised_to - sold.min(t) {
                passed_over += 1;
            } else {
                undecided += 1;
            }
        }
    }
    let unsold = figures.capacity - figures.sold;
    let end = if figures.held == 0 {
        let stranded: Vec<&EntryRow> = entries
            .iter()
            .filter(|e| e.state == "waiting" && e.quantity <= unsold)
            .collect();
        if let Some(e) = stranded.first() {
            wrong.push(format!(
                "{} entries wait at the end though they fit in the {unsold} unsold tickets (first: rank {}, {})",
                stranded.len(),
                e.rank,
                e.quantity
            ));
        }
        format!("at the end {unsold} unsold, nothing held, no entry waiting that fits")
    } else {
        format!(
            "{} tickets still held at the end: free tickets not checked",
            figures.held
        )
    };
    Check {
        name: "waitlist offered in order",
        passed: wrong.is_empty(),
        detail: if wrong.is_empty() {
            format!(
                "{} offers, each against the entries ahead of it in line that had joined ({ahead} pairs): \
                 {} of those still waited at the offer, {passed_over} rightly passed over (could never fit), \
                 {undecided} undecided by the records' times; {end}",
                seen.offers.len(),
                passed_over + undecided
            )
        } else {
            format!("{} violations, first: {}", wrong.len(), wrong[0])
        },
    }
}

/// No entry offered twice and no ticket held for two offers at once.
pub fn offered_once(buyers: &[BuyerRecord], entries: &[EntryRow], tickets_in_orders: i64, plan: &Plan) -> Check {
    let seen = Seen::new(buyers, entries, plan);
    let sold = Sold::new(buyers, tickets_in_orders);
    let mut wrong: Vec<String> = buyers
        .iter()
        .filter(|b| b.waitlist.as_ref().is_some_and(|w| w.second_offer_expiry_ms.is_some()))
        .map(|b| format!("buyer {} saw a second offer for its entry", b.index))
        .collect();
    let mut peak = 0;
    for offer in &seen.offers {
        let t = offer.made_ms;
        let held: i64 = seen
            .offers
            .iter()
            .filter(|o| std::ptr::eq(*o, offer) || (o.made_ms < t && t < o.last_seen_ms))
            .map(|o| o.quantity)
            .sum();
        let used = held + sold.min(t);
        peak = peak.max(used);
        if used > plan.raised_to {
            wrong.push(format!(
                "at {t} ms offers held {held} tickets and {} were sold, beyond the capacity {}",
                sold.min(t),
                plan.raised_to
            ));
        }
    }
    Check {
        name: "waitlist offered each ticket once",
        passed: wrong.is_empty(),
        detail: if wrong.is_empty() {
            format!(
                "{} offers, each entry's once; at most {peak} of {} tickets sold or held by offers at an offer's moment",
                seen.offers.len(),
                plan.raised_to
            )
        } else {
            format!("{} violations, first: {}", wrong.len(), wrong[0])
        },
    }
}

/// Every offer ended bought (a taken entry and an order) or lapsed.
pub fn bought_or_lapsed(buyers: &[BuyerRecord], entries: &[EntryRow], plan: &Plan) -> Check {
    let seen = Seen::new(buyers, entries, plan);
    let mut wrong = Vec::new();
    let still_offered = entries.iter().filter(|e| e.state == "offered").count();
    if still_offered > 0 {
        wrong.push(format!("{still_offered} entries still offered at the end"));
    }
    let (mut taken, mut lapsed, mut failed) = (0usize, 0usize, 0usize);
    for b in buyers {
        let Some(w) = &b.waitlist else { continue };
        let Some(entry) = seen.entries.get(w.email.as_str()) else {
            wrong.push(format!("buyer {} joined the waitlist, Postgres has no entry", b.index));
            continue;
        };
        let bought = b.bought().is_some();
        let expected = match (bought, w.offer.is_some()) {
            (true, _) => "taken",
            (false, true) => "lapsed",
            (false, false) => continue,
        };
        match (&b.outcome, bought) {
            (_, true) => taken += 1,
            (Outcome::OfferLapsed, _) => lapsed += 1,
            _ => failed += 1,
        }
        if entry.state != expected {
            wrong.push(format!(
                "buyer {}'s offer should have ended {expected}; its entry is {}",
                b.index, entry.state
            ));
        }
    }
    let taken_in_pg = entries.iter().filter(|e| e.state == "taken").count();
    if taken_in_pg != taken {
        wrong.push(format!(
            "{taken_in_pg} entries taken in Postgres, {taken} offers bought"
        ));
    }
    let lapsed_in_pg = entries.iter().filter(|e| e.state == "lapsed").count();
    Check {
        name: "every offer bought or lapsed",
        passed: wrong.is_empty(),
        detail: if wrong.is_empty() {
            format!(
                "{} entries; {taken} offers bought, {lapsed} let lapse, {failed} not bought otherwise; Postgres: {taken_in_pg} taken, {lapsed_in_pg} lapsed ({} lapsed unseen by their buyer)",
                entries.len(),
                lapsed_in_pg.saturating_sub(lapsed + failed)
            )
        } else {
            format!("{} violations, first: {}", wrong.len(), wrong[0])
        },
    }
}

/// Every ticket returned ended either bought by another order (returned) or still its
/// returner's (pending), never both and never neither: the shop took every return asked, the
/// sale's returned and pending tickets add up to those asked (the run withdraws none), and
/// the sale's row counts each ticket once, for the order holding it now.
pub fn returns_settled(
    buyers: &[BuyerRecord],
    figures: &Figures,
    orders: &[OrderRow],
    returns: ReturnFigures,
) -> Check {
    let mut wrong: Vec<String> = buyers
        .iter()
        .filter_map(|b| Some((b.index, b.returned.as_ref()?.refused.as_ref()?)))
        .map(|(i, why)| format!("buyer {i}'s return was refused: {why}"))
        .collect();
    let (mut returners, mut asked) = (0usize, 0i64);
    for r in buyers
        .iter()
        .filter_map(|b| b.returned.as_ref().filter(|r| r.refused.is_none()))
    {
        returners += 1;
        asked += r.tickets;
    }
    if returns.pending + returns.returned != asked {
        wrong.push(format!(
            "{asked} tickets returned by buyers; Postgres has {} bought by others and {} still theirs",
            returns.returned, returns.pending
        ));
    }
    let held: i64 = orders.iter().map(|o| o.quantity).sum::<i64>() - returns.returned;
    if figures.sale.sold != held {
        wrong.push(format!(
            "the sale row sold {} ≠ {held} tickets its orders hold (a returned ticket counted twice or not at all)",
            figures.sale.sold
        ));
    }
    Check {
        name: "every returned ticket bought by another or still its returner's",
        passed: wrong.is_empty(),
        detail: if wrong.is_empty() {
            format!(
                "{returners} buyers returned {asked} tickets: {} bought by others, {} still theirs; \
                 {held} tickets held by orders, as the sale row counts",
                returns.returned, returns.pending
            )
        } else {
            format!("{} violations, first: {}", wrong.len(), wrong[0])
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::organizer::SaleRecord;
    use crate::record::{ReturnRecord, Role, SeenOffer};

    const PLAN: Plan = Plan {
        capacity: 4,
        raised_to: 6,
        offer_ms: 1000,
    };

    fn figures(sold: i64, held: i64) -> Figures {
        Figures {
            capacity: 6,
            sold,
            held,
            waiting: 0,
            orders: 0,
            revenue_minor: 0,
            sale: SaleRecord { capacity: 6, sold },
        }
    }

    /// A waitlisted buyer: joined at 100 ms, seen waiting until `last_wait`, offered at
    /// `offered` (seen until 50 ms later), bought or not.
    fn waitlisted(
        index: usize,
        qty: u8,
        last_wait: i64,
        offered: Option<i64>,
        bought: bool,
    ) -> (BuyerRecord, EntryRow) {
        let mut b = BuyerRecord::new(index, Role::Buyer, qty);
        let email = format!("buyer{index}@example.com");
        b.waitlist = Some(WaitlistRecord {
            email: email.clone(),
            joined_server_ms: 100,
            last_waiting_server_ms: Some(last_wait),
            after_raise_server_ms: Some(150),
            offer: offered.map(|t| SeenOffer {
                expires_ms: t + PLAN.offer_ms,
                last_seen_ms: t + 50,
            }),
            ..Default::default()
        });
        b.outcome = match (offered, bought) {
            (Some(_), true) => Outcome::Bought { quantity: qty.into() },
            (Some(_), false) => Outcome::OfferLapsed,
            _ => Outcome::NeverOffered,
        };
        if bought {
            b.order_seen_server_ms = offered.map(|t| t + 100);
        }
        let state = match (offered, bought) {
            (Some(_), true) => "taken",
            (Some(_), false) => "lapsed",
            _ => "waiting",
        };
        let entry = EntryRow {
            email,
            quantity: qty.into(),
            rank: index as i64,
            state: state.into(),
        };
        (b, entry)
    }

    /// The waitlisted buyers and their entries, behind a crowd buyer who bought the first 4
    /// tickets (admitted at 10 ms, seen confirmed at 20 ms).
    fn split(v: Vec<(BuyerRecord, EntryRow)>) -> (Vec<BuyerRecord>, Vec<EntryRow>) {
        let mut crowd = BuyerRecord::new(0, Role::Buyer, 4);
        crowd.admitted_server_ms = Some(10);
        crowd.order_seen_server_ms = Some(20);
        crowd.outcome = Outcome::Bought { quantity: 4 };
        let (mut buyers, entries): (Vec<_>, Vec<_>) = v.into_iter().unzip();
        buyers.insert(0, crowd);
        (buyers, entries)
    }

    #[test]
    fn an_offer_that_skips_an_earlier_entry_that_fits_fails() {
        // Sold 4 of 6 (the first capacity, all before the raise); buyer 1 wants 2 and waits
        // past 200 ms, when buyer 2, behind it, is offered 1.
        let (b, e) = split(vec![
            waitlisted(1, 2, 300, None, false),
            waitlisted(2, 1, 190, Some(200), true),
        ]);
        let check = in_order(&b, &e, &figures(5, 0), 5, &PLAN);
        assert!(!check.passed, "{}", check.detail);
    }

    #[test]
    fn passing_over_an_entry_that_can_never_fit_is_in_order() {
        // Buyer 1 wants 3, with at most 2 unsold: passed over rightly.
        let (b, e) = split(vec![
            waitlisted(1, 3, 300, None, false),
            waitlisted(2, 1, 190, Some(200), true),
        ]);
        let check = in_order(&b, &e, &figures(5, 0), 5, &PLAN);
        assert!(check.passed, "{}", check.detail);
        assert!(check.detail.contains("1 rightly passed over"), "{}", check.detail);
    }

    #[test]
    fn tickets_free_at_the_end_with_an_entry_that_fits_fail() {
        let (b, e) = split(vec![waitlisted(1, 1, 300, None, false)]);
        assert!(!in_order(&b, &e, &figures(4, 0), 4, &PLAN).passed);
        assert!(in_order(&b, &e, &figures(6, 0), 4, &PLAN).passed);
    }

    #[test]
    fn two_offers_holding_more_than_the_unsold_tickets_fail() {
        // Sold 4 of 6: two offers of 1 at once fit; a third overlapping them does not.
        let (b, e) = split(vec![
            waitlisted(1, 1, 150, Some(200), false),
            waitlisted(2, 1, 150, Some(210), false),
        ]);
        let check = offered_once(&b, &e, 4, &PLAN);
        assert!(check.passed, "{}", check.detail);
        let (b, e) = split(vec![
            waitlisted(1, 1, 150, Some(200), false),
            waitlisted(2, 1, 150, Some(210), false),
            waitlisted(3, 1, 150, Some(220), false),
        ]);
        let check = offered_once(&b, &e, 4, &PLAN);
        assert!(!check.passed, "{}", check.detail);
    }

    #[test]
    fn an_offer_bought_must_be_a_taken_entry() {
        let (b, mut e) = split(vec![
            waitlisted(1, 1, 150, Some(200), true),
            waitlisted(2, 1, 150, Some(300), false),
        ]);
        assert!(bought_or_lapsed(&b, &e, &PLAN).passed);
        e[0].state = "lapsed".into();
        assert!(!bought_or_lapsed(&b, &e, &PLAN).passed);
        e[0].state = "offered".into();
        assert!(!bought_or_lapsed(&b, &e, &PLAN).passed);
    }

    /// The crowd buyer of `split` returns 2 of its 4 tickets between 30 and 40 ms.
    fn with_return(mut buyers: Vec<BuyerRecord>, refused: Option<&str>) -> Vec<BuyerRecord> {
        buyers[0].returned = Some(ReturnRecord {
            tickets: 2,
            after_ms: 30,
            before_ms: Some(40),
            refused: refused.map(str::to_string),
        });
        buyers
    }

    fn orders(quantities: &[i64]) -> Vec<OrderRow> {
        quantities
            .iter()
            .map(|&quantity| OrderRow {
                quantity,
                total_minor: quantity * crate::organizer::PRICE_MINOR,
            })
            .collect()
    }

    #[test]
    fn a_returned_ticket_offered_past_an_earlier_entry_that_fits_fails() {
        // Buyer 1 wants 3: beyond the 2 unsold of 6 without the return, within the 4 with it.
        let (b, e) = split(vec![
            waitlisted(1, 3, 300, None, false),
            waitlisted(2, 1, 190, Some(200), true),
        ]);
        assert!(in_order(&b, &e, &figures(5, 0), 5, &PLAN).passed);
        let check = in_order(&with_return(b, None), &e, &figures(3, 0), 5, &PLAN);
        assert!(!check.passed, "{}", check.detail);
    }

    #[test]
    fn offers_of_returned_tickets_within_the_unsold_are_offered_once() {
        // 4 sold, 2 returned: two overlapping offers of 2 hold the 4 unsold of 6.
        let (b, e) = split(vec![
            waitlisted(1, 2, 150, Some(200), false),
            waitlisted(2, 2, 150, Some(210), false),
        ]);
        assert!(!offered_once(&b, &e, 4, &PLAN).passed);
        let check = offered_once(&with_return(b, None), &e, 4, &PLAN);
        assert!(check.passed, "{}", check.detail);
    }

    #[test]
    fn returned_tickets_must_be_bought_by_another_or_still_the_returners() {
        // The crowd's order of 4 and a taker's of 2 (the returned tickets): the row counts 4.
        let (b, _) = split(vec![]);
        let b = with_return(b, None);
        let o = orders(&[4, 2]);
        let settled =
            |pending, returned, row| returns_settled(&b, &figures(row, 0), &o, ReturnFigures { pending, returned });
        assert!(settled(0, 2, 4).passed);
        // Neither: a ticket returned that is no longer its returner's, nor anyone else's.
        assert!(!settled(0, 1, 4).passed);
        // Both: bought by the taker, yet the sale row counts the returner's ticket too.
        assert!(!settled(0, 2, 6).passed);
    }

    #[test]
    fn a_refused_return_fails() {
        let (b, _) = split(vec![]);
        let b = with_return(b, Some("409 returns_not_allowed"));
        let returns = ReturnFigures {
            pending: 0,
            returned: 0,
        };
        let check = returns_settled(&b, &figures(4, 0), &orders(&[4]), returns);
        assert!(!check.passed, "{}", check.detail);
    }
}
