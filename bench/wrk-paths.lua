-- wrk script: one request per line of a paths file (announces or scrapes), picked at random; made by
--   node bench/pool.mjs --paths FILE
--
--   wrk -t1 -c100 -d10s -s bench/wrk-paths.lua http://127.0.0.1:8080 -- FILE [close] [validate]
--   (or env WRK_PATHS=FILE WRK_CLOSE=1 WRK_VALIDATE=1)
--
-- close:    send `Connection: close` so a well-behaved server answers and closes; wrk then
--           opens a new connection for the next request (one connection per request).
-- validate: check every answer is a bencoded dict with `peers` (or `files`) and no `failure reason`
--           (defining response() makes wrk hand every body to Lua: slower, for checks only).
-- A server that closes the connection without answering `Connection: close` shows up as one
-- read error per request (wrk reads EOF, counts an error, reconnects): opentracker does this
-- always, uWS and hyper-express do it when the request said `Connection: close`. The
-- answers themselves are complete and counted; only the EOF is an "error".
--
-- done() prints one line `WRKJSON {...}` that bench/suite.mjs parses.

local paths_file = os.getenv("WRK_PATHS")
-- globals (not locals) so done() can read the threads' values with thread:get()
close = os.getenv("WRK_CLOSE") == "1"
validate = os.getenv("WRK_VALIDATE") == "1"

local threads = {}
local paths = {}
local npaths = 0
-- per-thread counters are globals so done() can read them with thread:get()
bad, checked, first_bad = 0, 0, nil

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local function load(file)
  local f = assert(io.open(file, "r"), "cannot open paths file " .. tostring(file))
  for line in f:lines() do
    if #line > 0 then
      npaths = npaths + 1
      paths[npaths] = line
    end
  end
  f:close()
  assert(npaths > 0, "no paths in " .. file)
end

local headers = {}

function init(args)
  for _, a in ipairs(args) do
    if a == "close" then close = true
    elseif a == "validate" then validate = true
    elseif a == "keepalive" then close = false
    else paths_file = a end
  end
  assert(paths_file, "give the paths file: -- FILE (or WRK_PATHS=FILE)")
  load(paths_file)
  if close then headers["Connection"] = "close" end
  math.randomseed(os.time() + (id or 0) * 7919)
  if not validate then response = nil end
  -- the measured window starts now (bench/suite.mjs reads the server's CPU from here)
  if id == 1 then io.write("MEASURE\n"); io.flush() end
end

function request()
  return wrk.format("GET", paths[math.random(npaths)], headers)
end

function response(status, hdrs, body)
  checked = checked + 1
  if status ~= 200 or body == nil or body:sub(1, 1) ~= "d" or not (body:find("5:peers", 1, true) or body:find("5:files", 1, true))
     or body:find("14:failure reason", 1, true) then
    bad = bad + 1
    if first_bad == nil then first_bad = tostring(status) .. " " .. tostring(body):sub(1, 120) end
  end
end

function done(summary, latency, requests)
  local checked_all, bad_all, first = 0, 0, nil
  local closing = close
  if threads[1] then closing = threads[1]:get("close") end
  for _, t in ipairs(threads) do
    checked_all = checked_all + (t:get("checked") or 0)
    bad_all = bad_all + (t:get("bad") or 0)
    first = first or t:get("first_bad")
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'WRKJSON {"requests":%d,"seconds":%.3f,"rps":%.1f,"bytes":%d,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"p999_ms":%.3f,' ..
    '"max_ms":%.3f,"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d,"non2xx":%d,' ..
    '"checked":%d,"bad":%d,"close":%s}\n',
    summary.requests, secs, summary.requests / secs, summary.bytes,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.timeout, e.status, checked_all, bad_all, tostring(closing)))
  if first then io.write("WRK first bad answer: " .. first .. "\n") end
  io.flush() -- while wrk still runs: the suite reads its CPU time when this line arrives
end
