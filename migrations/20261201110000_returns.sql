-- Returns. A buyer who can no longer go offers tickets of a confirmed (or paid) order back,
-- when the organizer allows it for the sale. The tickets stay the buyer's, valid at the door,
-- until another buyer's order takes them: the order that takes them marks them `returned` in
-- its own transaction (db::returns::take), so a seat is never held by two valid tickets, nor
-- by none. A return may be withdrawn until then; once the event has started it is over and
-- the buyer keeps the tickets.
alter table ticket_sales
    add column returns_allowed boolean not null default false;

alter table tickets
    -- offered: offered for return, still valid; returned: another order took the seat
    add column return_state text check (return_state in ('offered', 'returned')),
    -- when it was offered: returns are taken oldest first
    add column return_offered_at timestamptz,
    add constraint return_offered_when check ((return_state is null) = (return_offered_at is null));

-- The orders that take returned tickets look only at those offered.
create index tickets_offered_for_return on tickets (return_offered_at, id) where return_state = 'offered';

-- An order all of whose tickets were returned is `returned`.
alter table orders drop constraint orders_state_check;
alter table orders add constraint orders_state_check
    check (state in ('confirmed', 'awaiting_payment', 'paid', 'cancelled', 'returned'));

-- The money given back for returned tickets of a paid order: one row per taking, named by how
-- many of the order's tickets were returned with it (so a retried refund has one idempotency
-- key), written in the taking order's transaction and refunded through Stripe after it.
create table return_refunds (
    order_id     bigint not null references orders (id),
    returned     smallint not null check (returned between 1 and 6),
    amount_minor bigint not null check (amount_minor > 0),
    refund_id    text,
    created_at   timestamptz not null default now(),
    primary key (order_id, returned)
);
create index return_refunds_due on return_refunds (created_at) where refund_id is null;
