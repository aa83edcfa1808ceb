//! The join's proof of work at the edge (see [`crate::pow`]): the challenge a client asks for,
//! and the check of a join, shared by the event page's form and the API.

use crate::pow::PowError;
use crate::sale::{Owner, SaleId};
use crate::startup::AppState;
use crate::web::error::WebError;

/// The challenge a join of `sale` by `owner` must solve now; `None` when the sale is quiet.
pub async fn challenge_for(
    state: &AppState,
    sale: SaleId,
    owner: &Owner,
) -> Result<Option<altcha::Challenge>, WebError> {
    let settings = state.puzzles.settings();
    if settings.joins_per_min == 0 {
        return Ok(None);
    }
    let joins = state.sales.joins_last_minute(sale).await?;
    Ok(settings
        .difficulty(joins)
        .map(|max_counter| state.puzzles.issue(sale, owner, max_counter)))
}

/// Counts the join and, when the sale is busy (or the client sent one anyway), checks its
/// proof and spends it. Runs before the join, so a refused proof changes nothing else.
pub async fn check_join(state: &AppState, sale: SaleId, owner: &Owner, proof: Option<&str>) -> Result<(), WebError> {
    if proof.is_some_and(|p| !crate::pow::is_well_formed(p)) {
        return Err(PowError::Malformed.into());
    }
    let settings = state.puzzles.settings();
    if settings.joins_per_min == 0 {
        return Ok(());
    }
    // Boxed, as the call below: a Redis call's future is kilobytes, which every join's future
    // would carry otherwise, proof of work on or off.
    let joins = Box::pin(state.sales.count_join(sale)).await?;
    let proof = match (proof.filter(|p| !p.trim().is_empty()), settings.difficulty(joins)) {
        (Some(proof), _) => proof,
        (None, None) => return Ok(()),
        (None, Some(_)) => return Err(PowError::Required.into()),
    };
    let valid = state.puzzles.check(sale, owner, proof)?;
    if !Box::pin(state.sales.use_proof_once(sale, &valid.nonce, valid.remember_secs)).await? {
        return Err(PowError::Reused.into());
    }
    Ok(())
}
