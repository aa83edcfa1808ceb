-- return_tickets.lua: tickets of an order were offered for return (or a return withdrawn) in
-- Postgres. Offered tickets are unsold for the live sale: the order that buys them takes them
-- from the returning buyer in its own transaction (src/db/returns.rs). So they come off
-- `sold` here and go to the queue, then down the waitlist in order, by the same `admit` and
-- `offer_waitlist` as every freed ticket. A withdrawal puts them back on `sold`; an offer
-- holding them meanwhile may then find the sale sold out at checkout (Postgres refuses it):
-- never more is sold than there is.
--
-- Rust: `ReturnTickets` in src/sale/script/returns.rs.
-- KEYS: the sale keys (see common.lua)
-- ARGV[1] delta   tickets offered for return now (> 0), or withdrawn (< 0)
-- Reply: applied: 1, or 0 when Redis has lost the sale (its rebuild reads Postgres, which
-- counts the return already: see `returns_open` in src/db/sales.rs)

local S = load_sale()
if not S then return 0 end
local delta = tonumber(ARGV[1])
S.sold = math.max(0, S.sold - delta)
redis.call('HSET', K.sale, 'sold', S.sold)
local now = now_ms()
lapse(S, now)
admit(S, now)
offer_waitlist(S, now)
return 1
