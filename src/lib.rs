//! boxoffice: a ticket shop with a virtual waiting room, built to sell the few tickets of a
//! popular concert to a far larger crowd, fairly and without ever overselling.
//!
//! # Layout
//!
//! - [`config`] — settings from the environment, read once.
//! - [`sale`] — the ticket sale aggregate, the only way a sale's state changes; its Lua
//!   scripts live in `lua/`.
//! - [`draw`] — the pre-queue's commit–reveal draw, its receipts and beacon, and the check a
//!   buyer runs (`boxoffice verify-draw`).
//! - [`db`] — Postgres access, the durable record; migrations in `migrations/`.
//! - [`email`] — the one rule for an email address, for buyers and organizers.
//! - [`redis`] — the Redis connection pool.
//! - [`admin`] — the organizer's portal and API (the door check-in among it).
//! - [`tickets`] — the tickets' PDF and the signed link to an order page.
//! - [`pow`] — the proof of work a join pays at a busy sale.
//! - [`mail`] — mail to buyers through the Postgres outbox and its background sender.
//! - [`web`] — routes, views and error rendering at the edge; [`startup`] wires it all.
//! - [`telemetry`] — logs; [`metrics`] — what `/metrics` exports.
//! - [`charts`] — line and area charts as SVG, drawn on the server.
//! - [`demo`] — `boxoffice demo`: the shop with a simulated crowd in one command.

pub mod admin;
pub mod charts;
pub mod config;
pub mod db;
pub mod demo;
pub mod draw;
pub mod email;
pub mod fields;
pub mod mail;
pub mod metrics;
pub mod payment;
pub mod pow;
pub mod redis;
pub mod sale;
pub mod startup;
pub mod telemetry;
pub mod tickets;
pub mod web;
