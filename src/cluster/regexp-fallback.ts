/** Scripts' regular expressions that backtrack catastrophically must not stall a process that serves traffic
 *  (scripts.md §9): one regexp call cannot be interrupted by the script budget, so V8 is told to switch such a
 *  call to its linear-time engine. Workers get the flag on their command line; the single process sets it at start. */
import { setFlagsFromString } from 'node:v8'

export const LINEAR_REGEXP_FALLBACK_FLAG = '--enable-experimental-regexp-engine-on-excessive-backtracks'

/** For the process running the data path itself (`workers: 0`). Applies to regexps compiled from now on. */
export function enableLinearRegexpFallback(): void {
  setFlagsFromString(LINEAR_REGEXP_FALLBACK_FLAG)
}
