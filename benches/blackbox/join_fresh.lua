-- wrk: a new buyer a request (no cookie): each POST joins the sale in env SALE. Every request
-- is the same, so wrk makes it once and calls no script per request (as plain `wrk` does).
wrk.method = "POST"
wrk.path = "/api/v1/sales/" .. os.getenv("SALE") .. "/reservations"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"quantity":1}'
