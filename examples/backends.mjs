// Two tiny HTTP backends for `make run` (127.0.0.1:8001 and :8002), so the example upstreams in
// examples/kv/ have something to proxy to. Each answers with its own name and the request it saw;
// /health answers 200 for the example heartbeat. Stops on SIGINT/SIGTERM.
import { createServer } from 'node:http'

const ports = (process.env.EXAMPLE_BACKEND_PORTS ?? '8001,8002').split(',').map(Number)
const servers = ports.map((port, i) => {
  const name = `backend-${i + 1}`
  const server = createServer((req, res) => {
    const body = req.url === '/health' ? 'ok\n' : `hello from ${name} (127.0.0.1:${port}): ${req.method} ${req.url} Host: ${req.headers.host}\n`
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-backend': name })
    res.end(body)
  })
  server.listen(port, '127.0.0.1', () => console.log(`example ${name} listening on 127.0.0.1:${port}`))
  return server
})

function stop() {
  for (const server of servers) server.close()
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
