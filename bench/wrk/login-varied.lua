-- login-varied.lua: POST /north/login with the username and ip varied per
-- request, from a list made from a fixed seed, so the server's registry
-- sees many north servers (and evicts once the list is longer than its
-- -registry-max).
--   wrk -t1 -c50 -d10s -s bench/wrk/login-varied.lua http://127.0.0.1:8000 -- [count] [seed]
-- count: how many distinct north servers (default 4096); seed: default 1.
-- The requests are built once in init(), so request() only picks the next
-- one and costs wrk next to nothing.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local reqs = {}
local n, i = 0, 0

function init(args)
   local count = tonumber(args[1]) or 4096
   local seed = tonumber(args[2]) or 1
   math.randomseed(seed)
   local headers = { ["Content-Type"] = "application/json" }
   for k = 1, count do
      local ip = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
      local body = string.format('{"username": "north-%d", "password": "secret-%d", "ip": "%s"}',
         k, math.random(1, 999999), ip)
      reqs[k] = wrk.format("POST", "/north/login", headers, body)
   end
   n = count
   -- Every thread walks the same list, each from its own offset.
   i = ((thread_no or 0) * 997) % n
end

function request()
   i = i + 1
   if i > n then i = 1 end
   return reqs[i]
end
