//! The waiting room promises that a buyer whose polls are refused as too fast (429) keeps its
//! place in line. Such a poll never reaches the `status` script, which is what notes a buyer
//! as present, and a flood of them must not reach Redis one by one. So the refused poll is
//! noted here in memory (deduplicated, at most [`MAX_PER_CLIENT`] codes per client address and
//! [`MAX_PENDING`] in all), and a background task reports the notes to Redis in one
//! `keep_present` call per sale, several times per abandon window (see [`flush_every`]).
//! Only a code with its session cookie counts, and the script skips any pair that is not a
//! waiting code of that owner, so a forged note changes nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use poem::Request;
use tracing::warn;
use uuid::Uuid;

use super::client::client_addr;
use super::rate_limit::{HOST_PREFIX, key_of};
use super::session;
use crate::sale::{Owner, ReservationCode, SaleId, TicketSales};

/// Most notes waiting for the next report.
pub const MAX_PENDING: usize = 10_000;
/// Most notes of one client address (counted as the poll limit counts it) per report.
pub const MAX_PER_CLIENT: usize = 32;
/// Most codes per script call.
const BATCH: usize = 500;

/// The notes of refused polls, reported to Redis in the background. Cheap to clone.
#[derive(Clone)]
pub struct Presence {
    pending: Arc<Mutex<Pending>>,
}

#[derive(Default)]
struct Pending {
    by_sale: HashMap<SaleId, HashMap<Uuid, Owner>>,
    per_client: HashMap<IpAddr, usize>,
    total: usize,
}

/// How often the notes are reported: a quarter of the abandon window, at most every 5 s, so
/// that a buyer refused all along is still reported several times before it would be dropped.
pub fn flush_every(abandon_secs: u32) -> Duration {
    Duration::from_millis((u64::from(abandon_secs) * 250).clamp(250, 5_000))
}

impl Presence {
    /// Starts the reporting task, which ends with the app.
    pub fn start(sales: TicketSales, abandon_secs: u32) -> Self {
        let pending = Arc::new(Mutex::new(Pending::default()));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(report_forever(
                sales,
                Arc::downgrade(&pending),
                flush_every(abandon_secs),
            ));
        }
        Presence { pending }
    }

    /// The poll of `code` in this request was refused as too fast: its buyer is still here.
    /// No I/O; a request without a valid code and session cookie notes nothing.
    pub fn note_refused_poll(&self, req: &Request, code: &str) {
        let (Ok(code), Some(owner)) = (code.parse::<ReservationCode>(), session::owner_from_cookie(req)) else {
            return;
        };
        let client = client_addr(req).map(|ip| key_of(ip, HOST_PREFIX));
        self.pending.lock().expect("presence lock").note(client, code, owner);
    }
}

impl Pending {
    /// Notes `code` unless its client or the whole buffer is full; `false` if it was dropped.
    fn note(&mut self, client: Option<IpAddr>, code: ReservationCode, owner: Owner) -> bool {
        if self.total >= MAX_PENDING {
            return false;
        }
        if let Some(client) = client
            && self.per_client.get(&client).copied().unwrap_or(0) >= MAX_PER_CLIENT
        {
            return false;
        }
        if self
            .by_sale
            .entry(code.sale)
            .or_default()
            .insert(code.token, owner)
            .is_none()
        {
            self.total += 1;
            if let Some(client) = client {
                *self.per_client.entry(client).or_default() += 1;
            }
        }
        true
    }
}

async fn report_forever(sales: TicketSales, pending: Weak<Mutex<Pending>>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let Some(pending) = pending.upgrade() else { return };
        let notes = std::mem::take(&mut *pending.lock().expect("presence lock"));
        drop(pending);
        for (sale, codes) in notes.by_sale {
            let codes: Vec<(ReservationCode, Owner)> = codes
                .into_iter()
                .map(|(token, owner)| (ReservationCode { sale, token }, owner))
                .collect();
            for batch in codes.chunks(BATCH) {
                if let Err(e) = sales.keep_present(sale, batch).await {
                    warn!(%sale, error = %e, "reporting the presence of refused polls failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_cannot_crowd_out_the_others() {
        let mut p = Pending::default();
        let flooder: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let sale = SaleId::new();
        let noted = (0..1000)
            .filter(|_| p.note(Some(flooder), ReservationCode::new(sale), Owner::random()))
            .count();
        assert_eq!(noted, MAX_PER_CLIENT);
        assert!(p.note(Some(other), ReservationCode::new(sale), Owner::random()));
        // The same code again takes no second place.
        let code = ReservationCode::new(sale);
        assert!(p.note(Some(other), code, Owner::random()));
        assert!(p.note(Some(other), code, Owner::random()));
        assert_eq!(p.total, MAX_PER_CLIENT + 2);
    }

    #[test]
    fn the_notes_are_bounded_in_all() {
        let mut p = Pending::default();
        let sale = SaleId::new();
        for i in 0..MAX_PENDING as u32 {
            let client = IpAddr::from(i.to_be_bytes());
            assert!(p.note(Some(client), ReservationCode::new(sale), Owner::random()));
        }
        assert!(!p.note(None, ReservationCode::new(sale), Owner::random()));
        assert_eq!(p.total, MAX_PENDING);
    }

    #[test]
    fn reports_come_several_times_per_abandon_window() {
        assert_eq!(flush_every(90), Duration::from_secs(5));
        assert_eq!(flush_every(60), Duration::from_secs(5));
        assert_eq!(flush_every(2), Duration::from_millis(500));
    }
}
