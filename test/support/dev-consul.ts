/** Starts the embedded Consul-compatible server for one test: it listens on 127.0.0.1 on a free port, comes with a
 *  real `consul` npm client pointed at it, and both are closed by `t.after`. Use it in any test that needs Consul:
 *
 *    const dev = await startDevConsul(t)                      // or startDevConsul(t, { acl_token: 'root' })
 *    await dev.consul.kv.set('config/slardar/myargs', '{}')   // through the client the proxy uses
 *    await fetch(`${dev.url}/v1/kv/x`, { method: 'PUT', body: 'v' })   // or raw HTTP
 *    buildConfig({ consul: { address: dev.addr } }, 'test')   // dev.addr is "127.0.0.1:PORT"
 *
 *  `options` are DevServerOptions (consul.md §15); shrink blocking waits with `max_query_time_ms` rather than
 *  faking time. `server` gives stats(), pause()/resume() and reapTombstones(). */

import Consul from 'consul'
import type { TestContext } from 'node:test'
import { startDevServer, type DevServer, type DevServerOptions } from '../../src/consul/devserver/index.js'

export interface DevConsul {
  readonly server: DevServer
  /** "http://127.0.0.1:PORT" */
  readonly url: string
  /** "127.0.0.1:PORT" */
  readonly addr: string
  readonly port: number
  /** A `consul` v2 client for this server (keep-alive agent, destroyed at the end of the test). */
  readonly consul: Consul
}

export async function startDevConsul(t: TestContext, options: DevServerOptions = {}): Promise<DevConsul> {
  const server = await startDevServer({ listen: '127.0.0.1:0', ...options })
  const consul = new Consul({ host: '127.0.0.1', port: server.port })
  t.after(async () => {
    consul.destroy()
    await server.close()
  })
  return { server, url: server.url, addr: `127.0.0.1:${server.port}`, port: server.port, consul }
}
