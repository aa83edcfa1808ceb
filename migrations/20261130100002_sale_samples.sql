-- A sale's figures over time, for the dashboard's charts and the API's series. Every app
-- instance samples each live sale at the same fixed interval; `taken_at` is the time of
-- Redis's clock rounded down to the interval, so the instances agree on the turn and the
-- primary key lets one sample per turn in (`on conflict do nothing`). Samples go with their
-- sale.
create table sale_samples (
    sale_id    uuid not null references ticket_sales (id) on delete cascade,
    taken_at   timestamptz not null,
    -- the live state at that moment
    waiting    bigint not null check (waiting >= 0),
    held       bigint not null check (held >= 0),  -- tickets held at checkout
    at_checkout bigint not null check (at_checkout >= 0),  -- buyers holding them
    sold       bigint not null check (sold >= 0),
    -- cumulative counts since the sale's live state was built
    admitted   bigint not null check (admitted >= 0),
    orders     bigint not null check (orders >= 0),
    joined     bigint not null check (joined >= 0),
    left_queue bigint not null check (left_queue >= 0),
    released   bigint not null check (released >= 0),
    abandoned  bigint not null check (abandoned >= 0),
    lapsed     bigint not null check (lapsed >= 0),
    sold_out   bigint not null check (sold_out >= 0),
    primary key (sale_id, taken_at)
);
