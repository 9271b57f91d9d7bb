/** X-Request-Id values (proxy.md §4): which incoming ids are kept, and new 32-hex random ids. Random bytes are drawn
 *  from the OS in 4 KiB batches so a request pays a hex conversion, not a syscall. */
import { randomFillSync } from 'node:crypto'

const ID_BYTES = 16
const POOL_BYTES = 4096
const pool = Buffer.allocUnsafe(POOL_BYTES)
let offset = POOL_BYTES

export function newRequestId(): string {
  if (offset + ID_BYTES > POOL_BYTES) {
    randomFillSync(pool)
    offset = 0
  }
  const id = pool.toString('hex', offset, offset + ID_BYTES)
  offset += ID_BYTES
  return id
}

/** Kept when present and valid: 1–200 visible ASCII characters. */
export function isValidRequestId(value: string): boolean {
  if (value.length === 0 || value.length > 200) return false
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if (code < 0x21 || code > 0x7e) return false
  }
  return true
}
