# serve.py PORT: runs the seed (seed.py, unchanged) on localhost:PORT.
#
# The seed hard-codes port 8000, which northd's `make run` and other tools
# on a shared machine also use, so the benchmarks need another port. Rather
# than edit the seed, this imports it (its own __main__ block does not run)
# and builds the very server its __main__ builds, on the given port.
import sys

import seed

if __name__ == '__main__':
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    server = seed.ThreadingHTTPServer(('localhost', port), seed.MyHTTPRequestHandler)
    print('正在启动服务,访问地址:http://localhost:%d' % port, flush=True)
    server.serve_forever()
