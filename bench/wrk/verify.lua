-- verify.lua: GET /north/verify with one bearer token, as a service asking
-- northd whether a north server's token is good would.
--   wrk -t1 -c50 -d10s -s bench/wrk/verify.lua http://127.0.0.1:8000 -- TOKEN
-- TOKEN is the 32 hex digits of one login's token. Log in once, from an ip
-- no other client logs in from, and then only verify: a later login from
-- the same ip replaces the token, and every verification then gets 401
-- (which done() counts as unexpected). bench/cmd/compare logs in just
-- before each run.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "GET"
wrk.path = "/north/verify"

function init(args)
   local token = args[1] or ""
   if not token:match("^[0-9a-f]+$") or #token ~= 32 then
      error("verify.lua: give the token of one login: wrk ... -s verify.lua URL -- TOKEN")
   end
   wrk.headers["Authorization"] = "Bearer " .. token
end

-- response(): a 200 that is not a verification (the start of its body)
-- counts as unexpected too.
local valid = '{"code": 0, "description": "valid", '
if os.getenv("WRK_CHECK") ~= "0" then
   function response(status, headers, body)
      if status ~= 200 or body:sub(1, #valid) ~= valid then
         bad = bad + 1
      end
   end
end
