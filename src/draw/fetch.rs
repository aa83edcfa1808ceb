//! `boxoffice verify-draw`: fetch a sale's published draw from the shop and check it.

use uuid::Uuid;

use super::published::{DrawCheckError, PublishedDraw, check};
use super::receipt::{PublicKey, Receipt};

/// Where the shop publishes a sale's draw, below its address.
pub fn draw_path(sale: Uuid) -> String {
    format!("/api/v1/sales/{sale}/draw")
}

/// Why `verify-draw` could not confirm a place.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("Failed to fetch the draw from {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("The shop published a draw for sale {published}, not for sale {asked}")]
    WrongSale { published: Uuid, asked: Uuid },
    #[error("The draw does not check: {0}")]
    Check(#[from] DrawCheckError),
}

/// Fetches the draw of `sale` from the shop at `shop` and checks it against `receipt`; on
/// success, the draw and the receipt's place.
pub async fn fetch_and_check(
    client: &reqwest::Client,
    shop: &str,
    sale: Uuid,
    receipt: &Receipt,
    trusted_local_beacon: Option<&PublicKey>,
) -> Result<(PublishedDraw, u64), VerifyError> {
    let url = format!("{}{}", shop.trim_end_matches('/'), draw_path(sale));
    let fetch_error = |reason: String| VerifyError::Fetch {
        url: url.clone(),
        reason,
    };
    let draw: PublishedDraw = client
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| fetch_error(e.to_string()))?
        .json()
        .await
        .map_err(|e| fetch_error(e.to_string()))?;
    if draw.sale != sale {
        return Err(VerifyError::WrongSale {
            published: draw.sale,
            asked: sale,
        });
    }
    let place = check(&draw, receipt, trusted_local_beacon)?;
    Ok((draw, place))
}
