-- wrk script of the data plane benchmark (deploy/bench/dataplane.sh): one
-- request per call, for a new user each time or for a user drawn from a small
-- pool.
--
--   MODE=assign  POST /api/ab-testing/tests/$TEST_ID/assign  {"user_id": ...}
--   MODE=record  POST /api/ab-testing/tests/$TEST_ID/record  {"user_id": ..., "metrics": {...}}
--   MODE=ofrep   POST /ofrep/v1/evaluate/flags/$FLAG_KEY     {"context": {"targetingKey": ...}}
--   USERS=0      a new user per request (default); USERS=N: uniform over N users
--   API_KEY      sent as X-API-Key when set
--
-- Usage: MODE=ofrep FLAG_KEY=bench API_KEY=... wrk -t2 -c32 -d10s --latency \
--          -s deploy/bench/dataplane.lua http://127.0.0.1:8000
local mode = os.getenv("MODE") or "assign"
local users = tonumber(os.getenv("USERS") or "0") or 0
local key = os.getenv("API_KEY") or ""
local test_id = os.getenv("TEST_ID") or "bench"
local flag_key = os.getenv("FLAG_KEY") or test_id

local path
if mode == "assign" then
  path = "/api/ab-testing/tests/" .. test_id .. "/assign"
elseif mode == "record" then
  path = "/api/ab-testing/tests/" .. test_id .. "/record"
elseif mode == "ofrep" then
  path = "/ofrep/v1/evaluate/flags/" .. flag_key
else
  error("MODE must be assign, record or ofrep, not " .. mode)
end

local headers = { ["Content-Type"] = "application/json" }
if key ~= "" then headers["X-API-Key"] = key end

-- Every thread names its users with its own prefix (the thread number and
-- the start time), so that "new" users are new across threads and runs.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local prefix
local counter = 0

function init(args)
  prefix = string.format("u%d-%d-", tid or 0, os.time())
  math.randomseed(os.time() + (tid or 0) * 7919)
end

local function user()
  if users > 0 then
    return "user-" .. math.random(1, users)
  end
  counter = counter + 1
  return prefix .. counter
end

function request()
  local u = user()
  local body
  if mode == "ofrep" then
    body = '{"context":{"targetingKey":"' .. u .. '"}}'
  elseif mode == "record" then
    body = '{"user_id":"' .. u .. '","metrics":{"conversion":1,"revenue":12.5}}'
  else
    body = '{"user_id":"' .. u .. '"}'
  end
  return wrk.format("POST", path, headers, body)
end
