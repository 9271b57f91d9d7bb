/** Snapshot errors (code prefix SNAPSHOT_). Only writing throws: a snapshot file that cannot be loaded is an
 *  expected outcome and comes back as a value from `loadSnapshotFile` (consul.md §11). */

export class SnapshotWriteError extends Error {
  readonly code = 'SNAPSHOT_WRITE_FAILED'
  /** `reason` alone, without the path, is what the admin API puts after "snapshot write failed: " (admin-api.md §4). */
  constructor(
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: snapshot write failed: ${reason}`, options)
    this.name = 'SnapshotWriteError'
  }
}
