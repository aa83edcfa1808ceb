-- The pre-queue and its draw (src/sale/prequeue.rs, src/draw/). Postgres is the truth for the
-- pre-queue: its entries are written here before the opening and nowhere else, so they
-- survive Redis losing the sale; at the opening they are frozen, drawn, and only then put into
-- the Redis queue in drawn order.

-- How long before `opens_at` buyers may join the pre-queue; 0: no pre-queue (joining before
-- the opening is refused). Sales made before this migration keep 0.
alter table ticket_sales
    add column prequeue_secs integer not null default 0 check (prequeue_secs between 0 and 86400);

-- One draw per sale, made with the first pre-queue join (`on conflict do nothing`). Its row is
-- the lock of the pre-queue: a join or a leave holds it `for share` while it checks
-- `frozen_at` and writes its entry, and the freeze updates it, so no entry comes or goes once
-- the list is frozen.
create table sale_draws (
    sale_id     uuid primary key references ticket_sales (id),
    -- the secret half of the commit-reveal draw; only its SHA-256 is shown before the draw
    server_seed bytea not null check (length(server_seed) = 32),
    created_at  timestamptz not null default now(),
    -- set once, at or after the opening, by whichever instance freezes first
    frozen_at   timestamptz,
    -- the draw's result (`DrawResult` as published), once computed: a function of the seed,
    -- the frozen list and the beacon round after `frozen_at`, so every instance computes the same
    result      jsonb,
    -- when the drawn entries went into the Redis queue
    enqueued_at timestamptz,
    check (result is null or frozen_at is not null),
    check (enqueued_at is null or result is not null)
);

create index sale_draws_due on sale_draws (sale_id) where enqueued_at is null;

create table prequeue_entries (
    sale_id     uuid not null references sale_draws (sale_id),
    -- the session the entry is bound to (as a reservation is): one entry per session
    owner       text not null,
    -- the receipt's secret: only its SHA-256 is ever published
    entry_id    bytea not null unique check (length(entry_id) = 16),
    -- the reservation code the entry becomes in the queue after the draw
    reservation uuid not null unique,
    quantity    smallint not null check (quantity between 1 and 6),
    joined_at   timestamptz not null default now(),
    primary key (sale_id, owner)
);
