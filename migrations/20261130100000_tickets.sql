-- Tickets and the state of an order.
--
-- An order is `confirmed` when the shop runs without payment (the only state written today).
-- The payment states are named here already so that paying can slot in without touching the
-- tickets: an order `awaiting_payment` becomes `paid` or `cancelled`. A ticket is valid at the
-- door only while its order is `confirmed` or `paid`; that rule lives in the one statement that
-- admits a ticket (src/db/tickets.rs).
alter table orders
    add column state text not null default 'confirmed'
        check (state in ('confirmed', 'awaiting_payment', 'paid', 'cancelled'));

-- One ticket per seat of an order, written in the transaction that writes the order.
create table tickets (
    id            bigint generated always as identity primary key,
    order_id      bigint not null references orders (id) on delete cascade,
    -- "2 of 3": its place among the order's tickets, 1-based
    number        smallint not null check (number between 1 and 6),
    -- what the QR code holds: 128 random bits, base64url without padding; never derived from
    -- anything a buyer could know
    code          text not null unique check (code ~ '^[A-Za-z0-9_-]{22,64}$'),
    -- set once, by the atomic update that admits the ticket at the door
    checked_in_at timestamptz,
    constraint one_ticket_per_seat unique (order_id, number)
);

-- Orders made before tickets existed get theirs now (no mail is sent for them). Their codes
-- are 244 random bits from two v4 UUIDs, base64url (43 characters): Postgres 13 has no
-- random-bytes function without an extension.
insert into tickets (order_id, number, code)
select o.id, n,
       translate(rtrim(encode(decode(replace(gen_random_uuid()::text, '-', '')
                                     || replace(gen_random_uuid()::text, '-', ''), 'hex'),
                              'base64'), '='), '+/', '-_')
from orders o, generate_series(1, o.quantity) as n;
