-- Payment. With Stripe configured an order is written `awaiting_payment` with a deadline; its
-- tickets exist from then on but admit nobody until it is `paid` (the door's rule). Every
-- change of state is one guarded update (the state it leaves in the `where`), so a webhook
-- and the buyer's return, or a payment and the deadline, cannot both win.
alter table orders
    add column payment_due_at timestamptz,
    -- the Stripe PaymentIntent of the order, once made (idempotency key: the order number)
    add column payment_intent text unique,
    -- a payment that arrived after the order was cancelled, given back
    add column refund_id text;

-- The overdue task looks only at orders still waiting for their money.
create index orders_payment_due on orders (payment_due_at) where state = 'awaiting_payment';

alter table outbox drop constraint outbox_kind_check;
alter table outbox add constraint outbox_kind_check
    check (kind in ('tickets', 'awaiting_payment', 'cancelled'));
