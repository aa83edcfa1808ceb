-- The durable record of boxoffice: organizers, their events, the ticket sales of an event and
-- the orders of a sale. The live state of a sale (queue, holds) lives in Redis; what must
-- survive anything is here, and the rules that must never break are checked here too.

create table organizers (
    id            uuid primary key,
    email         text not null unique check (length(email) between 3 and 254),
    password_hash text not null,
    created_at    timestamptz not null default now()
);

create table events (
    id           uuid primary key,
    organizer_id uuid not null references organizers (id),
    title        text not null check (length(title) between 1 and 200),
    description  text not null check (length(description) <= 5000),
    venue        text not null default '' check (length(venue) <= 200),
    starts_at    timestamptz not null,
    ends_at      timestamptz not null,
    capacity     integer not null check (capacity >= 1),
    -- money is an integer number of minor units plus a currency
    price_minor  bigint not null check (price_minor >= 0),
    currency     text not null check (currency ~ '^[A-Z]{3}$'),
    created_at   timestamptz not null default now(),
    check (ends_at > starts_at)
);

create index events_upcoming on events (starts_at);

-- A sale's capacity and price are its own: copied from the event when the sale is made, so
-- changing the event later does not change them.
create table ticket_sales (
    id          uuid primary key,
    event_id    uuid not null references events (id),
    capacity    integer not null check (capacity >= 1),
    price_minor bigint not null check (price_minor >= 0),
    currency    text not null check (currency ~ '^[A-Z]{3}$'),
    -- raised in the same statement that inserts an order, only while it stays within capacity
    sold        integer not null default 0 check (sold >= 0),
    opens_at    timestamptz not null,
    state       text not null default 'open' check (state in ('open', 'paused', 'closed')),
    hold_secs   integer not null check (hold_secs between 1 and 3600),
    -- buyers allowed at checkout at once; 0 means no limit
    max_active  integer not null default 0 check (max_active >= 0),
    created_at  timestamptz not null default now(),
    constraint never_oversold check (sold <= capacity)
);

create index ticket_sales_event on ticket_sales (event_id);

create table orders (
    id               bigint generated always as identity primary key,
    -- what the buyer sees; the id above never leaves the database
    number           text not null unique,
    sale_id          uuid not null references ticket_sales (id),
    reservation_code uuid not null,
    quantity         smallint not null check (quantity between 1 and 6),
    -- the sale's price at the moment the order was made
    unit_price_minor bigint not null check (unit_price_minor >= 0),
    currency         text not null check (currency ~ '^[A-Z]{3}$'),
    buyer_name       text not null check (length(buyer_name) between 1 and 200),
    buyer_email      text not null check (length(buyer_email) between 3 and 254),
    buyer_age        smallint not null check (buyer_age between 0 and 130),
    buyer_gender     text not null check (buyer_gender in ('female', 'male', 'diverse', 'unspecified')),
    created_at       timestamptz not null default now(),
    constraint one_order_per_reservation unique (reservation_code)
);

create index orders_sale_newest on orders (sale_id, created_at desc);
