#!/usr/bin/env node
/** The command line (config.md): `slardar start | dev | consul-dev | check-config | version`.
 *  Owns argument parsing, exit codes (0 ok, 1 invalid config or fatal start error, 2 usage) and signal
 *  wiring; everything it runs lives in the folders it imports. */

import { parseArgs } from 'node:util'
import { type Config, ConfigFileError, ConfigInvalidError, configToApply, describeConfig, diffConfig, loadConfigFile, parseConfigText } from './config/index.js'
import { createEndpoints, closeEndpoints } from './consul/client.js'
import { seedIfEmpty } from './consul/seed.js'
import { parseStaticUpstreams } from './cluster/primary.js'
import { MultiProcess } from './cluster/multi-process.js'
import { SingleProcess } from './cluster/single-process.js'
import { checkAccessLogTarget, createAppLogger, type Logger } from './log.js'
import { PRODUCT_VERSION } from './version.js'

const USAGE = `usage: slardar <command> [options]

commands:
  start [-c FILE]                              run with FILE (default ./slardar.json5) against a real Consul
  dev [-c FILE] [--seed DIR] [--data DIR]      start the embedded Consul on consul.address, seed it from DIR
                                               (default examples/kv) when empty, then run as start
  consul-dev [--listen ADDR] [--data DIR] [--token T]
                                               run only the embedded Consul-compatible server
  check-config [-c FILE]                       validate FILE and print the effective config
  version                                      print the version

options for start, dev, check-config:
  --log-level LEVEL   override log.level
  --workers N         override workers ("auto" or a number)`

class UsageError extends Error {
  readonly code = 'CLI_USAGE'
}

type Flags = Record<string, string | boolean | undefined>

function parse(argv: readonly string[], options: Record<string, { type: 'string' | 'boolean'; short?: string }>): Flags {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals: false, strict: true }).values as Flags
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

const CONFIG_FLAGS = {
  config: { type: 'string', short: 'c' },
  'log-level': { type: 'string' },
  workers: { type: 'string' },
} as const

async function readConfig(flags: Flags, fallbackToDefaults: boolean): Promise<Config> {
  const path = configPathOf(flags)
  const overrides = { logLevel: flags['log-level'] as string | undefined, workers: flags['workers'] as string | undefined }
  let config: Config
  try {
    config = await loadConfigFile(path, process.env, overrides)
  } catch (err) {
    // `slardar dev` with no file at all runs on defaults: a newcomer should not need one.
    const isMissing = err instanceof ConfigFileError && /ENOENT/.test(err.message)
    if (!(fallbackToDefaults && isMissing && flags['config'] === undefined)) throw err
    config = parseConfigText('{}', '(defaults)', process.env, overrides)
  }
  // Static upstreams are checkups' JSON; config/ keeps them raw, so they are validated here.
  const upstreamProblems = parseStaticUpstreams(config).problems
  if (upstreamProblems.length > 0) throw new ConfigInvalidError(path, upstreamProblems)
  return config
}

function waitForShutdown(log: Logger, stop: () => Promise<void>): void {
  let isStopping = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (isStopping) process.exit(1) // a second signal exits at once (proxy.md §10)
    isStopping = true
    log.info({ signal }, 'shutting down')
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}

/** The embedded server is only loaded by the commands that run it, keeping `start` lean. */
function loadDevServer(): Promise<typeof import('./consul/devserver/index.js')> {
  return import('./consul/devserver/index.js')
}

/** Runs the product until a signal ends it: loads the startup config (consul.md §3) — with none to load the
 *  primary's StartupError carries the whole line printed after `fatal: ` (main's catch) and the process exits 1 —
 *  then opens the proxy, stream and admin listeners. `reread` loads the config file again for SIGHUP (null: there is
 *  no file). `afterStop` runs once the product has shut down. */
async function runProduct(config: Config, reread: (() => Promise<Config>) | null, log: Logger, afterStop: () => Promise<void> = async () => undefined): Promise<void> {
  let product: SingleProcess | MultiProcess | null = null
  let isStopping = false
  waitForShutdown(log, async () => {
    isStopping = true
    await product?.shutdown()
    await afterStop()
  })
  process.on('SIGUSR1', () => product?.reopenLogs())
  let running = config
  // One reload at a time, in signal order: a roll takes a while and a second SIGHUP must diff against its result.
  let reloads = Promise.resolve()
  process.on('SIGHUP', () => {
    reloads = reloads.then(async () => {
      if (product === null || isStopping) return
      running = await reloadConfig(product, running, reread, log)
    })
  })
  const accessLogProblem = await checkAccessLogTarget(config.log.access)
  if (accessLogProblem !== null) throw new Error(`log.access: cannot open ${config.log.access} (${accessLogProblem})`)
  // workers: 0 runs everything here; otherwise this process is the primary and the data paths run in workers.
  product = config.workers === 0 ? await SingleProcess.start(config, log) : await MultiProcess.start(config, log)
  log.info({ source: product.primary.source, ...product.addresses }, 'slardar serving')
}

/** SIGHUP (proxy.md §10): the file is re-read and validated; an invalid one is rejected with its problems while the
 *  running config keeps serving. A valid one is compared with the running config (config/ diffConfig): each option
 *  only a restart applies gets a WARN and keeps its running value, the rest is applied in place or by rolling the
 *  workers. Resolves with the config now in effect; never rejects. */
async function reloadConfig(product: SingleProcess | MultiProcess, running: Config, reread: (() => Promise<Config>) | null, log: Logger): Promise<Config> {
  if (reread === null) {
    log.warn('SIGHUP: running on built-in defaults, there is no config file to re-read')
    return running
  }
  let next: Config
  try {
    next = await reread()
  } catch (err) {
    log.error(`SIGHUP: config rejected, the running config keeps serving: ${(err as Error).message}`)
    return running
  }
  const diff = diffConfig(running, next)
  for (const option of diff.restartOnly) log.warn({ option }, `SIGHUP: ${option} changed; restart slardar to apply`)
  if (diff.inPlace.length === 0 && !diff.roll) {
    log.info({ restart_only: diff.restartOnly }, 'SIGHUP: config re-read; nothing to apply without a restart')
    return running
  }
  const applied = configToApply(running, next, diff)
  if (applied.log.access !== running.log.access) {
    const problem = await checkAccessLogTarget(applied.log.access)
    if (problem !== null) {
      log.error({ option: 'log.access' }, `SIGHUP: config rejected, the running config keeps serving: log.access: cannot open ${applied.log.access} (${problem})`)
      return running
    }
  }
  try {
    const outcome = product instanceof MultiProcess ? await product.reload(applied, diff.roll) : await product.reload(applied)
    if (!outcome.ok) {
      log.error({ roll_for: diff.rollFor }, `SIGHUP: config not applied, the running config keeps serving: the workers could not be rolled (${outcome.reason})`)
      return running
    }
  } catch (err) {
    // Only re-opening the admin API can fail after the rest was applied: the running config is now `applied`.
    log.error({ err }, `SIGHUP: config applied, but the admin API could not re-open: ${(err as Error).message}`)
    return applied
  }
  const rolled = diff.roll ? `; workers rolled for ${diff.rollFor.join(', ')}` : ''
  const inPlace = diff.inPlace.length > 0 ? `applied in place: ${diff.inPlace.join(', ')}` : 'nothing in place'
  log.info({ in_place: diff.inPlace, roll_for: diff.rollFor, restart_only: diff.restartOnly, ...product.addresses }, `SIGHUP: config reloaded, ${inPlace}${rolled}`)
  return applied
}

async function commandStart(argv: readonly string[]): Promise<void> {
  const flags = parse(argv, CONFIG_FLAGS)
  const config = await readConfig(flags, false)
  const log = createAppLogger({ level: config.log.level, pretty: config.log.pretty, bindings: { role: 'primary' } })
  await runProduct(config, () => readConfig(flags, false), log)
}

function configPathOf(flags: Flags): string {
  return typeof flags['config'] === 'string' ? flags['config'] : './slardar.json5'
}

async function commandDev(argv: readonly string[]): Promise<void> {
  const flags = parse(argv, { ...CONFIG_FLAGS, seed: { type: 'string' }, data: { type: 'string' } })
  const config = await readConfig(flags, true)
  const log = createAppLogger({ level: config.log.level, pretty: config.log.pretty, bindings: { role: 'primary' } })
  const address = config.consul.address
  const { startDevServer } = await loadDevServer()
  const devServer = await startDevServer({
    listen: `${address.host}:${address.port}`,
    data: typeof flags['data'] === 'string' ? flags['data'] : null,
    logger: log.child({ component: 'consul-dev' }),
  })
  log.info({ url: devServer.url }, 'embedded consul listening')
  const seedDir = typeof flags['seed'] === 'string' ? flags['seed'] : 'examples/kv'
  const endpoints = createEndpoints(config)
  try {
    const seeded = await seedIfEmpty(endpoints[0] as (typeof endpoints)[number], config.consul.config_key_prefix, seedDir, config.consul.timeout * 1000)
    if (seeded.seeded) log.info({ keys: seeded.keys }, `seeded the embedded consul from ${seedDir}`)
    else log.info('embedded consul already holds keys; not seeding')
  } finally {
    closeEndpoints(endpoints)
  }
  await runProduct(config, flags['config'] === undefined ? null : () => readConfig(flags, false), log, () => devServer.close())
}

async function commandConsulDev(argv: readonly string[]): Promise<void> {
  const flags = parse(argv, { listen: { type: 'string' }, data: { type: 'string' }, token: { type: 'string' } })
  const log = createAppLogger({ level: 'info', pretty: false, bindings: { role: 'consul-dev' } })
  const { startDevServer } = await loadDevServer()
  const devServer = await startDevServer({
    listen: typeof flags['listen'] === 'string' ? flags['listen'] : '127.0.0.1:8500',
    data: typeof flags['data'] === 'string' ? flags['data'] : null,
    acl_token: typeof flags['token'] === 'string' ? flags['token'] : null,
    logger: log,
  })
  log.info({ url: devServer.url, acl: typeof flags['token'] === 'string' }, 'embedded consul listening')
  waitForShutdown(log, () => devServer.close())
}

async function commandCheckConfig(argv: readonly string[]): Promise<void> {
  const config = await readConfig(parse(argv, CONFIG_FLAGS), false)
  process.stdout.write(`${JSON.stringify(describeConfig(config), null, 2)}\n`)
}

async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv
  switch (command) {
    case 'start':
      return commandStart(rest)
    case 'dev':
      return commandDev(rest)
    case 'consul-dev':
      return commandConsulDev(rest)
    case 'check-config':
      return commandCheckConfig(rest)
    case 'version':
    case '--version':
      process.stdout.write(`slardar ${PRODUCT_VERSION}\n`)
      return
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`)
      if (command === undefined) process.exitCode = 2
      return
    default:
      throw new UsageError(`unknown command "${command}"`)
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`slardar: ${err.message}\n${USAGE}\n`)
    process.exit(2)
  }
  if (err instanceof ConfigInvalidError || err instanceof ConfigFileError) {
    process.stderr.write(`${err.message}\n`)
    process.exit(1)
  }
  const code = (err as { code?: string }).code
  if (code === 'CONSUL_STARTUP_FAILED') {
    // The message is the one line consul.md §3 specifies; nothing else goes to stderr.
    process.stderr.write(`fatal: ${(err as Error).message}\n`)
    process.exit(1)
  }
  process.stderr.write(`fatal: ${(err as Error).message ?? String(err)}${code === undefined ? '' : ` (${code})`}\n`)
  process.exit(1)
})
