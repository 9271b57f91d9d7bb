/** Errors of the embedded Consul-compatible server. Two kinds live here:
 *  - DevServerError: start-up and I/O failures a person must act on (bad option, corrupt data file), with a
 *    stable `CONSUL_DEV_*` code and a message that names the option or file.
 *  - ApiError: an HTTP answer Consul would give (status plus exact text), thrown inside a request handler and
 *    written by the router; it never escapes the server. */

export type DevServerErrorCode =
  | 'CONSUL_DEV_OPTION_INVALID'
  | 'CONSUL_DEV_DATA_CORRUPT'
  | 'CONSUL_DEV_DATA_UNREADABLE'
  | 'CONSUL_DEV_LISTEN_FAILED'

export class DevServerError extends Error {
  constructor(
    readonly code: DevServerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'DevServerError'
  }
}

export function invalidOption(option: string, expected: string, got: unknown): DevServerError {
  return new DevServerError(
    'CONSUL_DEV_OPTION_INVALID',
    `consul-dev: option ${option} must be ${expected}, got ${JSON.stringify(got) ?? String(got)}`,
  )
}

export function corruptDataFile(file: string, reason: string, cause?: unknown): DevServerError {
  return new DevServerError(
    'CONSUL_DEV_DATA_CORRUPT',
    `consul-dev: ${file} is corrupt (${reason}); move it away to start empty`,
    { cause },
  )
}

/** `text === null` means an empty body without Content-Type (Consul's bare 400 for control characters). */
export class ApiError extends Error {
  readonly code = 'CONSUL_DEV_API_ANSWER'
  constructor(
    readonly status: number,
    readonly text: string | null,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(text ?? `HTTP ${status}`)
    this.name = 'ApiError'
  }
}
