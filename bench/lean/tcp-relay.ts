/** The ceiling for Node I/O: a byte relay with one server connection per client connection and no HTTP at all.
 *  Every client byte goes to the server and back, so it proxies keep-alive HTTP correctly as long as one client
 *  connection maps to one server connection — which is all wrk needs. Owns nothing else. */

import { connect, createServer, type Server, type Socket } from 'node:net'

function relay(client: Socket, backendPort: number): void {
  // Nothing is read from the client until the server side exists (the stream proxy's rule, proxy.md §9).
  client.pause()
  client.setNoDelay(true)
  const server = connect({ host: '127.0.0.1', port: backendPort, noDelay: true })
  server.once('connect', () => {
    client.pipe(server)
    server.pipe(client)
    client.resume()
  })
  const destroyBoth = (): void => {
    client.destroy()
    server.destroy()
  }
  client.on('error', destroyBoth)
  server.on('error', destroyBoth)
  client.on('close', destroyBoth)
  server.on('close', destroyBoth)
}

export function createTcpRelay(backendPort: number): Server {
  return createServer({ noDelay: true }, (client) => relay(client, backendPort))
}
