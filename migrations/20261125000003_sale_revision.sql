-- Every change of a sale's state raises its revision, so that the live state in Redis can tell
-- a newer reading of the sale from an older one that arrives late.
alter table ticket_sales add column revision bigint not null default 0;
