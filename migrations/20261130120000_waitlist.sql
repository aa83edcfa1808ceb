-- The waitlist of a sold-out sale. The live line is in Redis beside the queue (its own keys,
-- the sale's hash tag); Postgres keeps every entry, so that a Redis that lost the line
-- rebuilds it: who (the session binding and the email), how many tickets, the place in line
-- (`rank`, the arrival sequence of the sale), and where the entry stands, with the expiry of
-- its offer. An entry's id is also the reservation code of its offer, so the order an offer
-- becomes carries the entry's id as its `reservation_code`.

-- How long an offer holds its tickets for the entry it went to.
alter table ticket_sales
    add column offer_secs integer not null default 900 check (offer_secs between 1 and 86400);

create table waitlist_entries (
    id               uuid primary key,
    sale_id          uuid not null references ticket_sales (id),
    -- the session the entry is bound to (as a reservation is)
    owner            text not null,
    email            text not null check (length(email) between 3 and 254),
    quantity         smallint not null check (quantity between 1 and 6),
    rank             bigint not null,
    -- waiting: in line; offered: holding an offer until offer_expires_at; taken: the offer
    -- became an order; lapsed: the offer ended unbought; left: the buyer left the line
    state            text not null default 'waiting'
                     check (state in ('waiting', 'offered', 'taken', 'lapsed', 'left')),
    offer_expires_at timestamptz,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now()
);

-- One place in line per session and per email, while the place lasts.
create unique index waitlist_one_per_owner on waitlist_entries (sale_id, owner)
    where state in ('waiting', 'offered');
create unique index waitlist_one_per_email on waitlist_entries (sale_id, lower(email))
    where state in ('waiting', 'offered');
create index waitlist_live on waitlist_entries (sale_id, rank) where state in ('waiting', 'offered');

-- The offer mail is about an entry, not an order.
alter table outbox alter column order_id drop not null;
alter table outbox add column waitlist_entry_id uuid references waitlist_entries (id);
alter table outbox add constraint outbox_about_one check ((order_id is null) <> (waitlist_entry_id is null));
alter table outbox drop constraint outbox_kind_check;
alter table outbox add constraint outbox_kind_check
    check (kind in ('tickets', 'awaiting_payment', 'cancelled', 'waitlist_offer'));
