/** The bench cases of performance.md and the subjects each one measures against the nginx anchor.
 *  A case is a small entry: worker count, request path, whether one server refuses, and its subjects. A subject
 *  knows how to start itself; the runner (run.ts) owns the anchor, readiness, rounds and stopping. */

import { join } from 'node:path'
import { startSeededConsul } from './embedded-consul.js'
import { ENGINES, type Engine } from './engines.js'
import { LARGE_BODY_PATH } from './nginx.js'
import type { Child, ChildRegistry } from './processes.js'
import { freePort } from './processes.js'
import { buildSubjectConfig, startSlardar } from './slardar-subject.js'

export interface BenchPaths {
  readonly repoRoot: string
  /** dist/src/cli.js: the subject is whatever `slardar start` serves. */
  readonly cliPath: string
  readonly enginesPath: string
  /** This case's scratch directory (configs, access logs, nginx prefixes). */
  readonly caseDir: string
}

/** What a subject gets to start itself with. */
export interface CaseEnvironment {
  readonly registry: ChildRegistry
  readonly paths: BenchPaths
  readonly subjectTemplate: Readonly<Record<string, unknown>>
  readonly workers: number
  /** The live backend ports (all three answer). */
  readonly backendPorts: readonly number[]
  /** The servers the case's upstream lists (in `retry`, one of them refuses connections). */
  readonly serverPorts: readonly number[]
  readonly hasRefusingServer: boolean
}

export type SubjectStart =
  | { readonly ok: true; readonly url: string; readonly child: Child; readonly accessLogPath: string | null }
  | { readonly ok: false; readonly reason: string }

export interface Subject {
  readonly label: string
  start(env: CaseEnvironment): Promise<SubjectStart>
}

export interface BenchCase {
  readonly name: string
  /** performance.md's "what it answers". */
  readonly question: string
  readonly workers: number
  readonly path: string
  readonly hasRefusingServer: boolean
  /** Value the case's per-host script puts in X-Bench-Script; the backend echoes it, which proves the script
   *  ran before any round is measured. null: no script. */
  readonly scriptProof: string | null
  readonly subjects: readonly Subject[]
  /** Run by plain `make bench`; the others run when named (or with BENCH_CASES=all). */
  readonly isDefault: boolean
}

/** wrk sends `Host: 127.0.0.1:<port>`, so per-host scripts are keyed by that routing host (proxy.md §2). */
const SCRIPT_HOST = '127.0.0.1'

function stringOption(section: unknown, name: string, fallback: string): string {
  const value = (section as Record<string, unknown> | undefined)?.[name]
  return typeof value === 'string' ? value : fallback
}

/** Slardar from bench/slardar.bench.json5. `scriptKeys` (relative to the script prefixes) are written to an
 *  embedded Consul first and the subject reads them through its watch, as in production. */
function slardar(scriptKeys: ((template: Readonly<Record<string, unknown>>) => Record<string, string>) | null = null): Subject {
  return {
    label: 'slardar',
    async start(env) {
      const [proxyPort, adminPort] = [await freePort(), await freePort()]
      let consulAddress: string | null = null
      if (scriptKeys !== null) {
        const consul = await startSeededConsul(env.registry, {
          repoRoot: env.paths.repoRoot,
          cliPath: env.paths.cliPath,
          port: await freePort(),
          keyPrefix: stringOption(env.subjectTemplate['consul'], 'config_key_prefix', 'config/slardar/'),
          keys: scriptKeys(env.subjectTemplate),
        })
        if (!consul.ok) return { ok: false, reason: consul.reason }
        consulAddress = consul.consul.address
      }
      const accessLogPath = join(env.paths.caseDir, 'slardar-access.log')
      const config = buildSubjectConfig({ ...env.subjectTemplate }, {
        proxyPort,
        adminPort,
        workers: env.workers,
        serverPorts: env.serverPorts,
        isHeartbeatEnabled: !env.hasRefusingServer,
        accessLogPath,
        snapshotPath: join(env.paths.caseDir, 'slardar-snapshot.json'),
        consulAddress,
      })
      const child = await startSlardar(env.registry, {
        repoRoot: env.paths.repoRoot,
        cliPath: env.paths.cliPath,
        configPath: join(env.paths.caseDir, 'slardar.bench.json5'),
        config,
      })
      return { ok: true, url: `http://127.0.0.1:${proxyPort}`, child, accessLogPath }
    },
  }
}

/** A bare Node proxy from engines.ts, forwarding to the first backend port. */
function engine(name: Engine): Subject {
  return {
    label: name,
    async start(env) {
      const port = await freePort()
      const child = env.registry.spawn(name, process.execPath, [env.paths.enginesPath, name, String(port), String(env.backendPorts[0])], {
        cwd: env.paths.repoRoot,
      })
      return { ok: true, url: `http://127.0.0.1:${port}`, child, accessLogPath: null }
    },
  }
}

const JS_HEADER_SCRIPT = "exports.onRequest = (ctx) => { ctx.req.setHeader('x-bench-script', 'js') }\n"
const LUA_HEADER_SCRIPT = 'ngx.req.set_header("X-Bench-Script", "lua")\n'

const PROXY_SMALL = {
  question: 'per-core proxy cost, 12-byte body',
  workers: 1,
  path: '/',
  hasRefusingServer: false,
  scriptProof: null,
  subjects: [slardar()],
} as const

export const CASES: readonly BenchCase[] = [
  { name: 'proxy-small', ...PROXY_SMALL, isDefault: true },
  { name: 'proxy-16k', ...PROXY_SMALL, question: 'body streaming cost, 16 KiB body', path: LARGE_BODY_PATH, isDefault: true },
  {
    name: 'retry',
    ...PROXY_SMALL,
    question: 'one of 3 servers refuses connections: rps and error rate',
    hasRefusingServer: true,
    isDefault: true,
  },
  { name: 'proxy-small-w2', ...PROXY_SMALL, question: 'multi-process scaling (workers=2)', workers: 2, isDefault: false },
  {
    name: 'script-js',
    ...PROXY_SMALL,
    question: 'cost of a trivial per-host JS script (header set) vs proxy-small',
    scriptProof: 'js',
    subjects: [slardar((t) => ({ [`${stringOption(t['consul'], 'js_prefix', 'js')}/script.${SCRIPT_HOST}`]: JS_HEADER_SCRIPT }))],
    isDefault: false,
  },
  {
    name: 'script-lua',
    ...PROXY_SMALL,
    question: 'cost of a trivial per-host Lua script (header set) vs proxy-small',
    scriptProof: 'lua',
    subjects: [slardar((t) => ({ [`${stringOption(t['consul'], 'lua_prefix', 'lua')}/script.${SCRIPT_HOST}`]: LUA_HEADER_SCRIPT }))],
    isDefault: false,
  },
  {
    name: 'engines',
    ...PROXY_SMALL,
    question: 'bare Node forwarding engines (issue #5): http-proxy vs undici Pool vs http.Agent',
    subjects: ENGINES.map(engine),
    isDefault: false,
  },
]

/** Cases by name, in registry order; unknown names are an error that lists the known ones. */
export function selectCases(names: readonly string[]): { ok: true; cases: BenchCase[] } | { ok: false; message: string } {
  if (names.length === 0) return { ok: true, cases: CASES.filter((c) => c.isDefault) }
  if (names.includes('all')) return { ok: true, cases: [...CASES] }
  const unknown = names.filter((name) => !CASES.some((c) => c.name === name))
  if (unknown.length > 0) {
    return { ok: false, message: `unknown case ${unknown.map((n) => `"${n}"`).join(', ')}; known: ${CASES.map((c) => c.name).join(', ')}, all` }
  }
  return { ok: true, cases: CASES.filter((c) => names.includes(c.name)) }
}
