#!/usr/bin/env node
/** The command line (config.md): `slardar start | dev | consul-dev | check-config | version`.
 *  Owns argument parsing, exit codes (0 ok, 1 invalid config or fatal start error, 2 usage) and signal
 *  wiring; everything it runs lives in the folders it imports. */

import { parseArgs } from 'node:util'
import { type Config, ConfigFileError, ConfigInvalidError, describeConfig, loadConfigFile, parseConfigText } from './config/index.js'
import { createEndpoints, closeEndpoints } from './consul/client.js'
import { seedIfEmpty } from './consul/seed.js'
import { parseStaticUpstreams, Primary } from './cluster/primary.js'
import { createAppLogger, type Logger } from './log.js'
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
  const path = typeof flags['config'] === 'string' ? flags['config'] : './slardar.json5'
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

/** Waits for the startup config (consul.md §3). With none to load, Primary.start() rejects with a StartupError whose
 *  message is the whole line printed after `fatal: ` (main's catch), and the process exits 1. */
async function startPrimary(primary: Primary, log: Logger): Promise<void> {
  const source = await primary.start()
  log.info({ source }, `config loaded from ${source}`)
}

async function commandStart(argv: readonly string[]): Promise<void> {
  const config = await readConfig(parse(argv, CONFIG_FLAGS), false)
  const log = createAppLogger({ level: config.log.level, pretty: config.log.pretty, bindings: { role: 'primary' } })
  const primary = new Primary(config, log)
  waitForShutdown(log, () => primary.stop())
  await startPrimary(primary, log)
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
  const primary = new Primary(config, log)
  waitForShutdown(log, async () => {
    await primary.stop()
    await devServer.close()
  })
  await startPrimary(primary, log)
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
