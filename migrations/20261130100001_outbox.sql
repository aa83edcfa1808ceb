-- Mail waiting to be sent. A row is written in the transaction of what it tells about (the
-- tickets mail with the order), so a committed order always has its mail and a rolled-back one
-- never does. A background task of any app instance takes due rows with
-- `for update skip locked`, so two instances never send one row at the same time; a failed
-- attempt sets `next_attempt_at` later (backoff) and the row waits.
create table outbox (
    id              bigint generated always as identity primary key,
    kind            text not null check (kind in ('tickets')),
    order_id        bigint not null references orders (id) on delete cascade,
    created_at      timestamptz not null default now(),
    attempts        integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    -- the last failure's cause (an SMTP error, never the message itself)
    last_error      text,
    sent_at         timestamptz
);

create index outbox_due on outbox (next_attempt_at) where sent_at is null;
