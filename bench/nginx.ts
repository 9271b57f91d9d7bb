/** The two nginx roles of performance.md "Setup": the **backend** that every proxy forwards to, and the **anchor**
 *  proxy that every ratio is measured against. Owns their configuration text (pure) and how nginx is started
 *  so that it never touches system paths: its own prefix, pid file, temp dirs and error log on stderr.
 *  Leaves readiness probes and stopping to processes.ts. */

import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Child, ChildRegistry } from './processes.js'

/** The backend's small body: 12 bytes, as performance.md specifies. */
export const SMALL_BODY = 'hello world\n'
export const LARGE_BODY_BYTES = 16 * 1024
export const LARGE_BODY_PATH = '/16k'

/** Header the backend echoes back from the request, so the runner can prove that a per-host script ran. */
export const SCRIPT_PROOF_REQUEST_HEADER = 'X-Bench-Script'
export const SCRIPT_PROOF_RESPONSE_HEADER = 'X-Bench-Saw-Script'

/** nginx keeps serving a connection for this many requests; high so neither side reconnects mid-round. */
const KEEPALIVE_REQUESTS = 1_000_000

/** Lines every bench nginx shares: foreground (so we own the process), files under its prefix, and, when we
 *  run as root, workers as root too, because the bench's temp dir is not readable by nginx's default user. */
function preamble(workers: number, isRoot: boolean): string {
  return [
    'daemon off;',
    'master_process on;',
    isRoot ? 'user root;' : '',
    `worker_processes ${workers};`,
    'pid nginx.pid;',
    'events { worker_connections 8192; }',
  ].filter((line) => line !== '').join('\n')
}

/** Temp paths default to /var/lib/nginx; relative paths resolve inside the prefix given with -p. */
const TEMP_PATHS = [
  'client_body_temp_path tmp/client_body;',
  'proxy_temp_path tmp/proxy;',
  'fastcgi_temp_path tmp/fastcgi;',
  'uwsgi_temp_path tmp/uwsgi;',
  'scgi_temp_path tmp/scgi;',
].join('\n  ')

export interface BackendConf {
  readonly ports: readonly number[]
  /** Absolute directory holding the file served at LARGE_BODY_PATH. */
  readonly documentRoot: string
  readonly isRoot: boolean
}

/** One worker is plenty: the backend answers from memory (12 B) or the page cache (16 KiB) with logging off. */
export function renderBackendConf(conf: BackendConf): string {
  const listens = conf.ports.map((port) => `    listen 127.0.0.1:${port};`).join('\n')
  return `${preamble(1, conf.isRoot)}
http {
  ${TEMP_PATHS}
  access_log off;
  keepalive_requests ${KEEPALIVE_REQUESTS};
  keepalive_timeout 65s;
  default_type application/octet-stream;
  server {
${listens}
    # Empty values are not sent, so the header appears only when a script set the request header.
    add_header ${SCRIPT_PROOF_RESPONSE_HEADER} $http_${SCRIPT_PROOF_REQUEST_HEADER.toLowerCase().replaceAll('-', '_')};
    # nginx reads \\n inside a quoted string as a newline, as JSON.stringify writes it.
    location = / { return 200 ${JSON.stringify(SMALL_BODY)}; }
    location = ${LARGE_BODY_PATH} { root ${conf.documentRoot}; }
  }
}
`
}

export interface AnchorConf {
  readonly listenPort: number
  /** Every server of the upstream, including a refusing one in the `retry` case. */
  readonly serverPorts: readonly number[]
  readonly workers: number
  /** Same tries as Slardar's default (`proxy.tries` 2), so retry cost is compared like for like. */
  readonly tries: number
  readonly accessLogPath: string
  readonly isRoot: boolean
}

/** The anchor is what a Slardar user runs today: nginx with a keep-alive upstream pool, HTTP/1.1 to the
 *  servers, the forwarding headers Slardar also adds, and an access log (Slardar logs every request too).
 *  `max_fails=0` mirrors Slardar's default (`global.default_max_fails` 0: passive checks off), so in `retry`
 *  both proxies keep picking the refusing server and retry past it. */
export function renderAnchorConf(conf: AnchorConf): string {
  const servers = conf.serverPorts.map((port) => `    server 127.0.0.1:${port} max_fails=0;`).join('\n')
  return `${preamble(conf.workers, conf.isRoot)}
http {
  ${TEMP_PATHS}
  access_log ${conf.accessLogPath};
  keepalive_requests ${KEEPALIVE_REQUESTS};
  keepalive_timeout 15s;
  upstream bench {
${servers}
    keepalive 64;
    keepalive_requests ${KEEPALIVE_REQUESTS};
  }
  server {
    listen 127.0.0.1:${conf.listenPort};
    location / {
      proxy_pass http://bench;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_next_upstream error timeout http_502;
      proxy_next_upstream_tries ${conf.tries};
      proxy_connect_timeout 3s;
    }
  }
}
`
}

/** Writes `nginx.conf` and the temp dirs under `prefixDir`, then starts nginx in the foreground. */
export async function startNginx(
  registry: ChildRegistry,
  label: string,
  nginxPath: string,
  prefixDir: string,
  confText: string,
): Promise<Child> {
  await mkdir(join(prefixDir, 'tmp'), { recursive: true })
  const confPath = join(prefixDir, 'nginx.conf')
  await writeFile(confPath, confText)
  // -e stderr: the compiled-in error log is opened before the config is read; this keeps nginx off /var/log.
  return registry.spawn(label, nginxPath, ['-p', `${prefixDir}/`, '-c', confPath, '-e', 'stderr'], { cwd: prefixDir })
}

/** The 16 KiB file the backend serves; printable bytes so any body-mangling bug is visible when debugging. */
export async function writeLargeBody(documentRoot: string): Promise<void> {
  await mkdir(documentRoot, { recursive: true })
  await writeFile(join(documentRoot, LARGE_BODY_PATH.slice(1)), 'x'.repeat(LARGE_BODY_BYTES - 1) + '\n')
}
