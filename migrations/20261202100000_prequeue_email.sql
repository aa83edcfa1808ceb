-- One place per verified email in a sale's pre-queue (src/sale/verified_email.rs): an organizer
-- setting; when on, a pre-queue join asks for an email, the shop mails a one-time link, and the
-- entry is made only when the link is opened, at most one per address and sale.

-- Off for every sale unless its organizer turns it on (only where the shop sends mail).
alter table ticket_sales add column one_place_per_email boolean not null default false;

-- A link mailed to an address that asked for a place. The link is this row's id signed with
-- the shop's secret: the id alone opens nothing, and no link can be made without the secret.
create table prequeue_links (
    id           uuid primary key,
    sale_id      uuid not null references ticket_sales (id),
    -- HMAC-SHA256 of the normalized address under a key derived from the shop's secret: what
    -- the entry keeps to hold one place per address (see `prequeue_entries.email_digest`)
    email_digest bytea not null check (length(email_digest) = 32),
    -- the address itself, only until the link's mail is sent: then it is erased
    address      text check (length(address) between 3 and 254),
    quantity     smallint not null check (quantity between 1 and 6),
    created_at   timestamptz not null default now(),
    expires_at   timestamptz not null,
    -- set once, by the confirmation that made the entry
    used_at      timestamptz
);

create index prequeue_links_live on prequeue_links (sale_id, email_digest) where used_at is null;

-- The address an entry was confirmed for, as its digest: one place per address and sale
-- while the place lasts (leaving the pre-queue frees it). Null for entries of sales without
-- the setting.
alter table prequeue_entries
    add column email_digest bytea check (length(email_digest) = 32);
create unique index prequeue_one_per_email on prequeue_entries (sale_id, email_digest);

-- The link's mail goes through the outbox like every other.
alter table outbox add column prequeue_link_id uuid references prequeue_links (id);
alter table outbox drop constraint outbox_about_one;
alter table outbox add constraint outbox_about_one
    check (num_nonnulls(order_id, waitlist_entry_id, prequeue_link_id) = 1);
alter table outbox drop constraint outbox_kind_check;
alter table outbox add constraint outbox_kind_check
    check (kind in ('tickets', 'awaiting_payment', 'cancelled', 'waitlist_offer', 'prequeue_link'));
