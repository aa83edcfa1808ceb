//! Script replies are read strictly: a reply of the wrong shape is an error that names the
//! script and the field, never a reservation made of zeros.

use boxoffice::sale::{Owner, SaleError, SaleKey, sale_key};
use fred::prelude::*;

use crate::support::World;

#[tokio::test]
async fn a_reply_of_the_wrong_shape_is_an_error_naming_the_field_not_a_zero() {
    let world = World::new().await;
    let sale = world.sale(2, 60).await.sale_id();
    let owner = Owner::random();
    let r = world
        .sales
        .join(sale, &owner, world.sales.quantity(1).unwrap())
        .await
        .unwrap();
    // A corrupt record: confirming, without the hold's own expiry. The status script then
    // answers without its last two fields (a Lua nil ends the reply). The record keeps the
    // owner's tag (its third field), under the code's 16 bytes.
    let res = sale_key(sale, SaleKey::Res);
    let field: Box<[u8]> = Box::new(*r.code.token.as_bytes());
    let admitted: String = world.redis.hget(&res, field.clone()).await.unwrap();
    let tag = admitted.split(' ').nth(2).expect("a record names its owner's tag");
    let record = format!("c 1 {tag}");
    let _: i64 = world.redis.hset(&res, (field, record)).await.unwrap();
    match world.sales.status(&r.code, &owner).await {
        Err(SaleError::Protocol { script, reply }) => {
            assert_eq!(script, "status");
            assert!(reply.contains("expires_ms"), "{reply}");
        }
        other => panic!("a short reply must be a protocol error, got {other:?}"),
    }
}
