-- get.lua: GET the URL's path; for GET / and the 404 route.
--   wrk -t1 -c50 -d10s -s bench/wrk/get.lua http://127.0.0.1:8000/
--   wrk -t1 -c50 -d10s -s bench/wrk/get.lua http://127.0.0.1:8000/nope -- 404
-- The optional argument is the status every response must have (200).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function init(args)
   expect = tonumber(args[1]) or 200
end
