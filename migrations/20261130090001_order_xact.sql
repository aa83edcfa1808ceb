-- Reconciling a sale with Redis reads only the orders it may not have seen yet. Each order
-- records the id of the transaction that wrote it: a read of Postgres whose snapshot has
-- `xmin` X sees every order written by a transaction below X (they had all ended), so the next
-- read need only ask for the orders of transactions from X on. Transaction ids
-- (`pg_current_xact_id`, 64 bits) never wrap.
alter table orders add column xact bigint not null default (pg_current_xact_id()::text::bigint);

create index orders_sale_xact on orders (sale_id, xact);
