/** Public face of snapshot/. Today: the last-known-good snapshot file (format, atomic write, debounced writer,
 *  strict load, housekeeping of its directory). The ConfigSnapshot model and its pure build are added here by their owners. */

export { SnapshotWriteError } from './errors.js'
export { isProcessAlive, removeStaleTempFiles } from './housekeeping.js'
export {
  loadSnapshotFile,
  type SnapshotBody,
  type SnapshotContent,
  type SnapshotContentProvider,
  type SnapshotEntry,
  type SnapshotFlushResult,
  type SnapshotLoadResult,
  type SnapshotLogger,
  SnapshotWriter,
  type SnapshotWriterOptions,
  type SnapshotWriterStatus,
  writeSnapshotFile,
  type WriterClock,
  type WriterTimers,
} from './file.js'
