-- mixed.lua: home page, login and 404 in a fixed proportion, interleaved.
--   wrk -t1 -c50 -d10s -s bench/wrk/mixed.lua http://127.0.0.1:8000 -- [home] [login] [notfound]
-- The weights default to 3 home, 6 login, 1 not found in every 10 requests.
-- With WRK_CHECK=0, done() compares wrk's count of responses >= 400 with
-- the expected share of 404s.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local reqs, expects = {}, {}
local n, i = 0, 0

function init(args)
   local home = tonumber(args[1]) or 3
   local login = tonumber(args[2]) or 6
   local notfound = tonumber(args[3]) or 1
   local h = { ["Content-Type"] = "application/json" }
   local kinds = {
      { home, wrk.format("GET", "/"), 200 },
      { login, wrk.format("POST", "/north/login", h,
         '{"username": "north-1", "password": "secret", "ip": "192.0.2.10"}'), 200 },
      { notfound, wrk.format("GET", "/favicon.ico"), 404 },
   }
   -- Interleave rather than run each kind in a block: a smooth round robin
   -- over the weights.
   local total = home + login + notfound
   local credit = { 0, 0, 0 }
   for _ = 1, total do
      local best = nil
      for k = 1, 3 do
         credit[k] = credit[k] + kinds[k][1]
         if kinds[k][1] > 0 and (best == nil or credit[k] > credit[best]) then best = k end
      end
      credit[best] = credit[best] - total
      n = n + 1
      reqs[n], expects[n] = kinds[best][2], kinds[best][3]
   end
   i = (thread_no or 0) % n
   -- done() with WRK_CHECK=0: the 404s are expected, about this share.
   share_4xx = notfound / total
end

-- response(): a 404 must carry the 404 page, anything else must be
-- a 200 (response() does not know which request it answers).
if os.getenv("WRK_CHECK") ~= "0" then
   function response(status, headers, body)
      if status == 404 then
         if body ~= "<h1>404 Not Found</h1>" then bad = bad + 1 end
      elseif status ~= 200 then
         bad = bad + 1
      end
   end
end

function request()
   i = i + 1
   if i > n then i = 1 end
   return reqs[i]
end
