/** Config errors (code prefix CONFIG_). Messages are what `slardar check-config` and a failed start print. */

export class ConfigFileError extends Error {
  readonly code = 'CONFIG_FILE_UNREADABLE'
  constructor(
    readonly path: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${reason}`, options)
    this.name = 'ConfigFileError'
  }
}

export class ConfigInvalidError extends Error {
  readonly code = 'CONFIG_INVALID'
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(
      `${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n` +
        problems.map((problem) => `  ${problem}`).join('\n'),
    )
    this.name = 'ConfigInvalidError'
  }
}
