-- Bearer tokens for the organizer JSON API. A token is shown once when it is made; only its
-- SHA-256 is kept, so a leaked copy of this table opens nothing. A token is random (at least
-- 128 bits), so a plain hash without salt is enough: there is nothing to guess.

create table api_tokens (
    id           uuid primary key,
    organizer_id uuid not null references organizers (id) on delete cascade,
    token_sha256 bytea not null unique check (length(token_sha256) = 32),
    label        text not null default '' check (length(label) <= 100),
    created_at   timestamptz not null default now(),
    last_used_at timestamptz
);

create index api_tokens_organizer on api_tokens (organizer_id);

-- The portal lists an organizer's events, newest first.
create index events_organizer on events (organizer_id, created_at desc);
