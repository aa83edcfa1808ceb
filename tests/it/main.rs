//! Integration tests against the live Redis and Postgres of the machine. Each test makes its
//! own Postgres database and its own sales (random ids, so its own Redis keys): they run in
//! parallel.

mod abuse;
mod admin_accounts;
mod admin_api;
mod admin_events;
mod admin_sales;
mod admin_support;
mod admission_rate;
mod bad_input;
mod buyer_api;
mod buyer_browser;
mod buyer_pages;
mod cluster;
mod cookies;
mod demo;
mod door;
mod errors;
mod event_seats;
mod fault_support;
mod faults;
mod hostile_clients;
mod mail;
mod operations;
mod organizer_limits;
mod reconcile;
mod redis_durability;
mod redis_servers;
mod sale_engine;
mod sale_samples;
mod script_replies;
mod smtp_sink;
mod support;
mod tickets;
mod time_bounds;
