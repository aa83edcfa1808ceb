-- An event's sales share its seats. Summing the sales' `sold` under a lock on the event row is
-- not enough: under READ COMMITTED the statement that sums reads a snapshot taken before it
-- waited for the lock, so two orders in two sales could both see the last seat free. Instead the
-- event keeps its own counter, raised by every order in the same transaction as the sale's with
-- `sold + quantity <= capacity` in the update's predicate; Postgres re-checks that predicate on
-- the newest row version after waiting for a concurrent update, and the check below refuses
-- whatever slips past it.
alter table events add column sold integer not null default 0 check (sold >= 0);

update events e
   set sold = coalesce((select sum(s.sold) from ticket_sales s where s.event_id = e.id), 0);

-- `not valid`: an event oversold before this migration still migrates; every later write is checked.
alter table events add constraint event_never_oversold check (sold <= capacity) not valid;
