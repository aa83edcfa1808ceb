//! The same code on a Redis Cluster: three primaries of a test's own, two app instances
//! sharing them and one Postgres database, sales on different shards, concurrent buyers on
//! both instances. Nothing is oversold, each sale admits in the order buyers joined, a session
//! made on one instance is known to the other, and scripts come back after a node lost them.

use std::collections::{HashMap, HashSet};

use boxoffice::config::Settings;
use boxoffice::sale::{Owner, ReservationState, SaleId, SaleState};
use fred::prelude::*;
use serde_json::{Value, json};

use crate::redis_servers::{Cluster, redis_cli};
use crate::support::{World, serve, test_settings};

const SHARDS: usize = 3;
const CAPACITY: i32 = 8;
const BUYERS_PER_SALE: usize = 20;

async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The primary (`host:port`) that owns a sale's keys, by `CLUSTER KEYSLOT` and the slot map.
async fn shard_of(redis: &Pool, sale: SaleId) -> (u16, String) {
    let key = format!("bo:{{{}}}:sale", sale.0.simple());
    let slot: u16 = redis.next().cluster_keyslot(key).await.unwrap();
    let routing = redis
        .next()
        .cached_cluster_state()
        .expect("a cluster client knows the slot map");
    let server = routing.get_server(slot).expect("every slot has a primary");
    (slot, format!("{}:{}", server.host, server.port))
}

struct Buyer {
    client: reqwest::Client,
    code: String,
    /// The instance the buyer joined on; it polls and confirms on the other.
    joined_on: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_a_three_shard_cluster_never_oversell_and_admit_in_order() {
    let cluster = Cluster::start();
    let settings = Settings {
        redis_url: cluster.url.clone(),
        ..test_settings()
    };
    let world = World::with_settings(settings.clone()).await;
    // Instance B: its own Redis pool and sale service, which loads its scripts on every primary.
    let b = boxoffice::startup::connect(&settings)
        .await
        .expect("instance B reaches the cluster");
    let sales_b = b.sales.clone();
    let instances = [serve(world.app_state()).await, serve(b).await];

    // One sale per shard: new sales until every primary owns one.
    let mut by_shard: HashMap<String, SaleId> = HashMap::new();
    while by_shard.len() < SHARDS {
        let sale = world.sale(CAPACITY, 120).await.sale_id();
        let (slot, node) = shard_of(&world.redis, sale).await;
        if let std::collections::hash_map::Entry::Vacant(e) = by_shard.entry(node) {
            println!("sale {sale}: CLUSTER KEYSLOT {slot} -> primary {}", e.key());
            e.insert(sale);
        }
    }
    let sales: Vec<SaleId> = by_shard.values().copied().collect();

    // Paused, the sales queue every buyer and admit nobody: the queue then shows the order of
    // arrival, which admission must follow once the sales resume.
    for &sale in &sales {
        world.sales.set_state(sale, SaleState::Paused).await.unwrap();
    }
    let joins = sales.iter().flat_map(|&sale| {
        let instances = instances.clone();
        (0..BUYERS_PER_SALE).map(move |i| {
            let instances = instances.clone();
            tokio::spawn(async move {
                let client = crate::support::browser();
                let joined_on = i % 2;
                let url = format!("{}/api/v1/sales/{sale}/reservations", instances[joined_on]);
                let (status, body) =
                    json_of(client.post(url).json(&json!({"quantity": 1})).send().await.unwrap()).await;
                assert_eq!(status, 201, "{body}");
                assert_eq!(body["state"], "waiting", "{body}");
                (
                    sale,
                    Buyer {
                        client,
                        code: body["code"].as_str().unwrap().to_string(),
                        joined_on,
                    },
                )
            })
        })
    });
    let mut buyers: HashMap<SaleId, Vec<Buyer>> = HashMap::new();
    for (sale, buyer) in futures::future::join_all(joins).await.into_iter().map(Result::unwrap) {
        buyers.entry(sale).or_default().push(buyer);
    }

    // The order of arrival, as each sale's queue holds it.
    let mut arrival: HashMap<SaleId, Vec<String>> = HashMap::new();
    for &sale in &sales {
        let members = crate::support::queue::codes(&world.redis, sale).await;
        assert_eq!(members.len(), BUYERS_PER_SALE);
        let prefix = sale.0.simple().to_string();
        arrival.insert(sale, members.into_iter().map(|m| format!("{prefix}{m}")).collect());
    }

    for &sale in &sales {
        sales_b.set_state(sale, SaleState::Open).await.unwrap();
    }

    // Every buyer polls on the other instance until admitted or sold out, and checks out.
    let runs = buyers.into_iter().flat_map(|(sale, list)| {
        let instances = instances.clone();
        list.into_iter().map(move |b| {
            let instances = instances.clone();
            tokio::spawn(async move {
                let other = &instances[1 - b.joined_on];
                loop {
                    let url = format!("{other}/api/v1/reservations/{}", b.code);
                    let (status, body) = json_of(b.client.get(url).send().await.unwrap()).await;
                    assert_eq!(status, 200, "{body}");
                    match body["state"].as_str().unwrap() {
                        "waiting" => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                        "sold_out" => return (sale, b, false),
                        "admitted" => break,
                        other => panic!("unexpected state {other}"),
                    }
                }
                let url = format!("{other}/api/v1/reservations/{}/order", b.code);
                let details =
                    json!({"name": "Ada Lovelace", "email": "ada@example.com", "age": 36, "gender": "female"});
                // A 503 says nothing changed and asks to try again (a Postgres statement that
                // timed out on a loaded machine): the buyer does, as a client should.
                for _ in 0..5 {
                    let (status, body) = json_of(b.client.post(&url).json(&details).send().await.unwrap()).await;
                    if status == 503 {
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        continue;
                    }
                    assert_eq!(status, 201, "{body}");
                    return (sale, b, true);
                }
                panic!("the order was refused with 503 five times");
            })
        })
    });
    let outcomes: Vec<_> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    for &sale in &sales {
        let confirmed: HashSet<&str> = outcomes
            .iter()
            .filter(|(s, _, ok)| *s == sale && *ok)
            .map(|(_, b, _)| b.code.as_str())
            .collect();
        let first: HashSet<&str> = arrival[&sale][..CAPACITY as usize].iter().map(String::as_str).collect();
        assert_eq!(
            confirmed, first,
            "sale {sale}: the first {CAPACITY} in line bought, nobody else"
        );
        let pg_sold = world.pg_sold(sale).await;
        let orders: i64 = sqlx::query_scalar("select count(*) from orders where sale_id = $1")
            .bind(sale.0)
            .fetch_one(&world.db)
            .await
            .unwrap();
        assert_eq!(pg_sold, CAPACITY, "sale {sale}: sold out exactly, not beyond");
        assert_eq!(orders, i64::from(CAPACITY));
        let figures = sales_b.figures(sale).await.unwrap();
        assert_eq!(
            (figures.sold, figures.held),
            (i64::from(CAPACITY), 0),
            "Redis agrees with Postgres"
        );
    }

    // A session minted on one instance is found by the other: the confirmation page loads the
    // session from the store on the cluster.
    let (sale, buyer, _) = outcomes.iter().find(|(_, _, ok)| *ok).unwrap();
    let other = &instances[1 - buyer.joined_on];
    let page = buyer
        .client
        .get(format!("{other}/orders/{}", buyer.code))
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        200,
        "the order page of sale {sale} on the other instance"
    );
    let stranger = crate::support::browser()
        .get(format!("{other}/orders/{}", buyer.code))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 404);

    // Every primary forgets its scripts (as after a restart); the next calls load them again
    // on every primary through the NOSCRIPT path and go on.
    for port in cluster.ports() {
        assert_eq!(redis_cli(port, &["script", "flush"]), "OK");
    }
    for &sale in &sales {
        assert_eq!(world.sales.figures(sale).await.unwrap().sold, i64::from(CAPACITY));
        assert_eq!(sales_b.figures(sale).await.unwrap().sold, i64::from(CAPACITY));
    }
}

#[tokio::test]
async fn a_primary_that_restarts_empty_gets_its_scripts_and_sales_back() {
    let cluster = Cluster::start();
    let world = World::with_settings(Settings {
        redis_url: cluster.url.clone(),
        ..test_settings()
    })
    .await;
    let sale = world.sale(5, 60).await.sale_id();
    let (slot, node) = shard_of(&world.redis, sale).await;
    let port: u16 = node.rsplit(':').next().unwrap().parse().unwrap();
    println!("sale {sale}: CLUSTER KEYSLOT {slot} -> primary {node}");

    let first = Owner::random();
    let r = world
        .sales
        .join(sale, &first, world.sales.quantity(2).unwrap())
        .await
        .unwrap();
    world
        .sales
        .confirm(&r.code, &first, &crate::support::ada())
        .await
        .unwrap();

    // The sale's primary comes back without its keys and without the scripts (a restart
    // forgets them all).
    cluster.restart(port);
    assert_eq!(redis_cli(port, &["dbsize"]), "0");

    // The client reconnects by itself; until then calls fail fast, and then the sale is
    // rebuilt from Postgres on the first call and the scripts loaded again on NOSCRIPT.
    let second = Owner::random();
    let mut joined = None;
    for _ in 0..50 {
        match world.sales.join(sale, &second, world.sales.quantity(3).unwrap()).await {
            Ok(r) => {
                joined = Some(r);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
    let r = joined.expect("the sale answers again after its primary restarted");
    assert_eq!(r.state, ReservationState::Admitted, "2 of 5 sold: 3 are free");
    world
        .sales
        .confirm(&r.code, &second, &crate::support::ada())
        .await
        .unwrap();

    let third = Owner::random();
    let r = world
        .sales
        .join(sale, &third, world.sales.quantity(1).unwrap())
        .await
        .unwrap();
    assert_eq!(r.state, ReservationState::SoldOut);
    assert_eq!(world.pg_sold(sale).await, 5);
    assert_eq!(world.sales.figures(sale).await.unwrap().sold, 5);
}
