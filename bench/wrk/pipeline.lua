-- pipeline.lua: N requests per write on each connection (HTTP pipelining).
--   wrk -t1 -c50 -d10s -s bench/wrk/pipeline.lua http://127.0.0.1:8000 -- [depth] [route]
-- depth: requests per write (default 16); route: home (default), login or
-- notfound. wrk counts every pipelined response as one request.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local batch

function init(args)
   local depth = tonumber(args[1]) or 16
   local route = args[2] or "home"
   local one
   if route == "login" then
      one = wrk.format("POST", "/north/login", { ["Content-Type"] = "application/json" },
         '{"username": "north-1", "password": "secret", "ip": "192.0.2.10"}')
   elseif route == "notfound" then
      one = wrk.format("GET", "/favicon.ico")
      expect = 404
   else
      one = wrk.format("GET", "/")
   end
   batch = string.rep(one, depth)
end

function request()
   return batch
end
