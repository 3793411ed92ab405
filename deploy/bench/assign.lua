-- wrk script: POST .../assign for random users of one test.
-- Usage: TEST_ID=<id> ABACUS_API_KEY=<key> wrk -t2 -c32 -d10s --latency \
--          -s deploy/bench/assign.lua http://127.0.0.1:8000
local test_id = os.getenv("TEST_ID") or "bench"
local key = os.getenv("ABACUS_API_KEY")
local counter = 0

request = function()
  counter = counter + 1
  local headers = { ["Content-Type"] = "application/json" }
  if key and key ~= "" then headers["X-API-Key"] = key end
  local body = string.format('{"user_id":"user-%d-%d"}', math.random(1, 1000000000), counter)
  return wrk.format("POST", "/api/ab-testing/tests/" .. test_id .. "/assign", headers, body)
end

done = function(summary, latency, requests)
  local codes = summary.errors
  io.write(string.format("non-2xx or socket errors: status %d, connect %d, read %d, write %d, timeout %d\n",
    codes.status, codes.connect, codes.read, codes.write, codes.timeout))
end
