-- login.lua: POST /north/login with one fixed body, as a north server would.
--   wrk -t1 -c50 -d10s -s bench/wrk/login.lua http://127.0.0.1:8000
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "POST"
wrk.path = "/north/login"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username": "north-1", "password": "secret", "ip": "192.0.2.10"}'
