-- common.lua: loaded by every script in bench/wrk (never run on its own).
--
-- done() prints one machine-readable line for bench/cmd/compare:
--   WRKJSON {"requests":..,"rps":..,"p50_us":..,"p99_us":..,"status_errors":..,...}
-- and a human line with the count of unexpected statuses.
--
-- Every response's status is checked in response() and the count of those
-- that differ from the expected one is reported by done(). A LuaJIT
-- response() callback makes wrk hand headers and body to Lua for every
-- response; measured against the floor peer it costs wrk 2-6% of its
-- speed on single requests and ~20% pipelined, never half (see
-- bench/README.md), so it is on by default. WRK_CHECK=0 turns it off:
-- done() then reports wrk's own count of statuses >= 400, made in C at no
-- cost (make compare runs so, to keep the client light).

-- expect is the status every response must have (200 unless a script or
-- its arguments say otherwise); the main state reads it back in done().
expect = 200
bad = 0

local threads = {}

-- setup runs in wrk's main Lua state once per thread; each thread learns
-- its number (thread_no, from 0) for scripts that spread their requests.
function setup(thread)
   thread:set("thread_no", #threads)
   table.insert(threads, thread)
end

if os.getenv("WRK_CHECK") ~= "0" then
   function response(status, headers, body)
      if status ~= expect then
         bad = bad + 1
      end
   end
end

function done(summary, latency, requests)
   local exp, share = 200, nil
   local checked, badn = false, 0
   for _, t in ipairs(threads) do
      exp = t:get("expect") or exp
      share = t:get("share_4xx") or share
      local b = t:get("bad")
      if b then badn = badn + b end
   end
   checked = os.getenv("WRK_CHECK") ~= "0"
   local e = summary.errors
   local secs = summary.duration / 1e6
   -- With WRK_CHECK=0: a response is unexpected when its class differs
   -- from the expected one (wrk counts status >= 400 for us).
   local unexpected
   if checked then
      unexpected = badn
   elseif share then
      -- a mix: as many >= 400 as its share of 404s, give or take one
      -- round of the mix per connection
      unexpected = math.abs(e.status - math.floor(share * summary.requests + 0.5))
   elseif exp >= 400 then
      unexpected = summary.requests - e.status
   else
      unexpected = e.status
   end
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_us":%d,"rps":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"status_errors":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
      '"expect":%d,"unexpected":%d,"checked":%s}\n',
      summary.requests, summary.duration, summary.requests / secs,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      e.status, e.connect, e.read, e.write, e.timeout,
      exp, unexpected, tostring(checked)))
   io.write(string.format("%d responses, %d not %d%s; socket errors: connect %d, read %d, write %d, timeout %d\n",
      summary.requests, unexpected, exp, checked and " (checked each in response())" or " (status class, counted by wrk)",
      e.connect, e.read, e.write, e.timeout))
end
