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
        let mut p = self.pending.lock().expect("presence lock");
        if p.total >= MAX_PENDING {
            return;
        }
        if let Some(client) = client
            && p.per_client.get(&client).copied().unwrap_or(0) >= MAX_PER_CLIENT
        {
            return;
        }
        if p.by_sale
            .entry(code.sale)
            .or_default()
            .insert(code.token, owner)
            .is_none()
        {
            p.total += 1;
            if let Some(client) = client {
                *p.per_client.entry(client).or_default() += 1;
            }
        }
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
    fn reports_come_several_times_per_abandon_window() {
        assert_eq!(flush_every(90), Duration::from_secs(5));
        assert_eq!(flush_every(60), Duration::from_secs(5));
        assert_eq!(flush_every(2), Duration::from_millis(500));
    }
}
