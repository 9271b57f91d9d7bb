/** Builds every pino logger of the process (style.md: only this file does). The app log is JSON lines on
 *  stderr-free stdout by default; `log.pretty` switches to pino-pretty for humans. Secrets never reach a
 *  line: tokens are redacted wherever they appear in logged objects (consul.md §10, admin-api.md §3). */

import pino, { type Logger } from 'pino'

export type { Logger } from 'pino'

export interface AppLogOptions {
  readonly level: string
  readonly pretty: boolean
  /** Bound into every line, e.g. `{ role: 'primary' }` or `{ worker: 2 }`. */
  readonly bindings?: Readonly<Record<string, unknown>>
}

const REDACTED_PATHS = [
  'token',
  '*.token',
  'acl_token',
  '*.acl_token',
  'headers["x-consul-token"]',
  '*.headers["x-consul-token"]',
  'headers.authorization',
  '*.headers.authorization',
  'headers["x-slardar-token"]',
  '*.headers["x-slardar-token"]',
]

export function createAppLogger(options: AppLogOptions): Logger {
  const logger = pino({
    level: options.level,
    base: { pid: process.pid, ...options.bindings },
    redact: { paths: REDACTED_PATHS, censor: '******' },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(options.pretty
      ? { transport: { target: 'pino-pretty', options: { colorize: process.stdout.isTTY, translateTime: 'SYS:standard' } } }
      : {}),
  })
  return logger
}

/** A logger that writes nothing, for library code used without a configured process (tests, tools). */
export function createSilentLogger(): Logger {
  return pino({ level: 'silent' })
}
