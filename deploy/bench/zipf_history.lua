-- wrk script: GET .../analyze/history of tests picked with Zipf popularity,
-- as a dashboard does (a few tests are viewed most of the time).
-- Usage: TEST_IDS=ids.txt ZIPF_S=1.1 ABACUS_API_KEY=<key> wrk -t2 -c16 -d10s \
--          -s deploy/bench/zipf_history.lua http://127.0.0.1:8000
local ids = {}
for line in io.lines(os.getenv("TEST_IDS") or "ids.txt") do
  if line ~= "" then ids[#ids + 1] = line end
end
local s = tonumber(os.getenv("ZIPF_S") or "1.1")
local key = os.getenv("ABACUS_API_KEY")
-- Cumulative Zipf weights over ranks 1..n.
local cdf, total = {}, 0
for k = 1, #ids do
  total = total + 1 / (k ^ s)
  cdf[k] = total
end

local function pick()
  local u = math.random() * total
  local lo, hi = 1, #cdf
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return ids[lo]
end

request = function()
  local headers = {}
  if key and key ~= "" then headers["X-API-Key"] = key end
  return wrk.format("GET", "/api/ab-testing/tests/" .. pick() .. "/analyze/history", headers)
end
