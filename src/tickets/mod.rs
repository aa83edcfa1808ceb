//! What a buyer takes home: the tickets' PDF and the signed link back to the order page.

pub mod link;
pub mod pdf;

use sqlx::PgPool;

use crate::db;
use crate::db::orders::Order;

/// The PDF of an order's tickets, read from Postgres; `None` when its sale is gone.
pub async fn order_pdf(db: &PgPool, order: &Order) -> Result<Option<Vec<u8>>, sqlx::Error> {
    let Some(listing) = db::events::listing_of_sale(db, order.sale_id).await? else {
        return Ok(None);
    };
    let tickets = db::tickets::of_order(db, order.id).await?;
    Ok(Some(pdf::render(order, &listing, &tickets)))
}

/// The file name a download of an order's tickets gets.
pub fn pdf_file_name(order: &Order) -> String {
    format!("tickets-{}.pdf", order.number)
}

/// The `Content-Disposition` of that download.
pub fn pdf_disposition(order: &Order) -> String {
    format!("attachment; filename=\"{}\"", pdf_file_name(order))
}
