-- One-time invite links to make an organizer account (BOXOFFICE_SIGNUP=invite). Only a
-- link's SHA-256 is kept, as for API tokens: the link is random, so a leaked copy of this
-- table opens nothing. A link works once (`used_at` is set in the same transaction that makes
-- the account) and until `expires_at`.

create table organizer_invites (
    id           uuid primary key,
    invited_by   uuid not null references organizers (id) on delete cascade,
    token_sha256 bytea not null unique check (length(token_sha256) = 32),
    created_at   timestamptz not null default now(),
    expires_at   timestamptz not null,
    used_at      timestamptz
);

create index organizer_invites_invited_by on organizer_invites (invited_by, created_at desc);
