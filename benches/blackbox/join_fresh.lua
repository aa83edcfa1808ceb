-- wrk: a new buyer a request (no cookie): each POST joins the sale in env SALE.
local sale = os.getenv("SALE")
request = function()
  return wrk.format("POST", "/api/v1/sales/" .. sale .. "/reservations",
    { ["Content-Type"] = "application/json" }, '{"quantity":1}')
end
