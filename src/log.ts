/** Builds every pino logger of the process (style.md: only this file does). The app log is JSON lines on
 *  stderr-free stdout by default; `log.pretty` switches to pino-pretty for humans. Secrets never reach a
 *  line: tokens are redacted wherever they appear in logged objects (consul.md §10, admin-api.md §3). */

import { mkdir, open } from 'node:fs/promises'
import { dirname } from 'node:path'
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

/** The access log (proxy.md §8): one JSON object per line with exactly the fields the caller passes, in the caller's
 *  key order, written through pino's asynchronous destination (SonicBoom) so a request never waits on the disk.
 *  `log.access` is "stdout", "off" or a file path (opened for append, directory created). Lines are batched up to
 *  8 KiB and handed over at least once a second, so a quiet proxy still writes promptly. `reopen()` is for SIGUSR1
 *  (log rotation, like `nginx -s reopen`).
 *
 *  The line is serialised here rather than by a pino logger: pino always adds a level key (an empty level formatter
 *  leaves a stray comma), and Slardar's format has none. */
export interface AccessLog {
  /** False for "off": callers may skip building a record at all. */
  readonly isEnabled: boolean
  write(record: Readonly<Record<string, string | number>>): void
  /** A line the caller serialised itself (hot paths with a fixed field list); must end with "\n". */
  writeLine(line: string): void
  /** Reopens the file after rotation; a no-op for stdout and "off". */
  reopen(): void
  /** Resolves once every line written so far reached the file descriptor. */
  flush(): Promise<void>
  /** Flushes, then closes the destination. */
  close(): Promise<void>
}

const ACCESS_FLUSH_INTERVAL_MS = 1000
/** Lines are joined into batches of about this many characters before they reach SonicBoom: its write() measures
 *  the byte length of its whole pending buffer on every call, which per line cost ~5 µs under load (bench). */
const ACCESS_BATCH_CHARS = 8192

/** `onError` hears write and reopen failures of the file (a removed log directory at SIGUSR1, a full disk): they are
 *  reported and serving goes on. Without it they would be uncaught and end the process. */
export function createAccessLog(target: string, onError: (err: Error) => void = reportAccessLogError): AccessLog {
  if (target === 'off') return DISABLED_ACCESS_LOG
  const isStdout = target === 'stdout'
  const destination = pino.destination(
    isStdout
      ? { dest: 1, sync: false, minLength: 1 }
      : { dest: target, sync: false, append: true, mkdir: true, minLength: 1 },
  )
  destination.on('error', onError)
  let batch = ''
  let isClosed = false
  const writeBatch = (): void => {
    if (batch === '') return
    destination.write(batch)
    batch = ''
  }
  const flush = (): Promise<void> =>
    new Promise((resolve) => {
      if (isClosed) return resolve()
      writeBatch()
      // The callback form waits for the writes to land; an fsync error is not worth failing a request over.
      destination.flush(() => resolve())
    })
  const timer = setInterval(writeBatch, ACCESS_FLUSH_INTERVAL_MS)
  timer.unref()
  return {
    isEnabled: true,
    write(record) {
      this.writeLine(accessLine(record))
    },
    writeLine(line) {
      if (isClosed) return
      batch += line
      if (batch.length >= ACCESS_BATCH_CHARS) writeBatch()
    },
    reopen() {
      if (!isStdout && !isClosed) destination.reopen()
    },
    flush,
    async close() {
      clearInterval(timer)
      await flush()
      if (isClosed) return
      isClosed = true
      if (isStdout) return
      await new Promise<void>((resolve) => {
        destination.once('close', () => resolve())
        destination.end()
      })
    },
  }
}

function reportAccessLogError(err: Error): void {
  process.stderr.write(`access log: ${err.message}; lines are lost until it can be written again\n`)
}

/** Whether `log.access` can be opened for appending (its directory is created as the access log would): null when it
 *  can, else the reason. Checked before a start or a SIGHUP reload uses the path, so a typo is an error naming the
 *  option instead of a process that cannot log. */
export async function checkAccessLogTarget(target: string): Promise<string | null> {
  if (target === 'off' || target === 'stdout') return null
  try {
    await mkdir(dirname(target), { recursive: true })
    const file = await open(target, 'a')
    await file.close()
    return null
  } catch (err) {
    return (err as Error).message
  }
}

const DISABLED_ACCESS_LOG: AccessLog = Object.freeze({
  isEnabled: false,
  write: () => undefined,
  writeLine: () => undefined,
  reopen: () => undefined,
  flush: () => Promise.resolve(),
  close: () => Promise.resolve(),
})

/** `{"k":v,...}\n`. Keys are the caller's identifiers (no escaping needed); strings take a fast path when they hold
 *  nothing JSON must escape, which is every field of a normal request. */
function accessLine(record: Readonly<Record<string, string | number>>): string {
  let line = '{'
  for (const key in record) {
    const value = record[key]!
    line += (line.length === 1 ? '"' : ',"') + key + '":' + (typeof value === 'number' ? jsonNumber(value) : jsonStringLiteral(value))
  }
  return line + '}\n'
}

/** A number as JSON (non-finite values become null, as JSON.stringify does). */
export function jsonNumber(value: number): string {
  return Number.isFinite(value) ? String(value) : 'null'
}

/** A string as a JSON literal, quotes included; strings with nothing to escape skip JSON.stringify. */
export function jsonStringLiteral(value: string): string {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if (code < 0x20 || code === 0x22 || code === 0x5c || code > 0x7e) return JSON.stringify(value)
  }
  return '"' + value + '"'
}
