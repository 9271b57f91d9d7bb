/** `/v1/txn` request bodies (consul.md §22): Go-style decoding of `[{"KV": {...}}, …]` into KvOps, with Consul's
 *  400/413 texts and their order (decode errors, then the op count, then per-op checks). Running the ops belongs
 *  to state.ts, which applies them to one draft so that all writes share one index or none happen. */

import { ApiError } from './errors.js'
import { goQuote } from './go-compat.js'
import { goField, goJsonTypeName, goTypeError, isJsonObject, parseJson } from './json.js'
import { isWriteVerb, type KvOp } from './kv-ops.js'

export interface TxnLimits {
  readonly txnMaxOps: number
  readonly kvMaxValueSize: number
}

export interface ParsedTxn {
  readonly ops: readonly KvOp[]
  /** No write verb: answered by the read path, which consumes no index and carries KnownLeader/LastContact. */
  readonly isReadOnly: boolean
}

const MAX_UINT64 = (1n << 64n) - 1n
const NON_KV_OPS = ['Node', 'Service', 'Check', 'Session']

export const TXN_DOCS_URL = 'https://developer.hashicorp.com/docs/agent/config/config-files#txn_max_req_len'

function parseFailed(detail: string): ApiError {
  return new ApiError(400, `Failed to parse body: ${detail}`)
}

function readUint64(kv: Record<string, unknown>, field: string): bigint {
  const value = goField(kv, field)
  if (value === undefined || value === null) return 0n
  if (typeof value === 'bigint' && value >= 0n && value <= MAX_UINT64) return value
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return BigInt(value)
  const shown = typeof value === 'number' || typeof value === 'bigint' ? `number ${value}` : undefined
  if (shown !== undefined) {
    throw parseFailed(`json: cannot unmarshal ${shown} into Go struct field TxnOp.KV.${field} of type uint64`)
  }
  throw parseFailed(goTypeError(value, `TxnOp.KV.${field}`, 'uint64'))
}

function readText(kv: Record<string, unknown>, field: string): string {
  const value = goField(kv, field)
  if (value === undefined || value === null) return ''
  if (typeof value !== 'string') throw parseFailed(goTypeError(value, `TxnOp.KV.${field}`, 'string'))
  return value
}

/** Go's base64.StdEncoding as encoding/json uses it for []byte: padding required, CR/LF ignored. */
function decodeBase64(text: string): Buffer {
  const compact = text.replace(/[\r\n]/g, '')
  const badChar = compact.search(/[^A-Za-z0-9+/=]/)
  if (badChar !== -1) throw parseFailed(`illegal base64 data at input byte ${badChar}`)
  const padding = compact.indexOf('=')
  const isPaddingWrong =
    padding !== -1 && (compact.length - padding > 2 || !/^=+$/.test(compact.slice(padding)) || compact.length % 4 !== 0)
  if (isPaddingWrong) throw parseFailed(`illegal base64 data at input byte ${padding}`)
  if (compact.length % 4 !== 0) throw parseFailed(`illegal base64 data at input byte ${compact.length - (compact.length % 4)}`)
  return Buffer.from(compact, 'base64')
}

function readValue(kv: Record<string, unknown>): Buffer | null {
  const value = goField(kv, 'Value')
  if (value === undefined || value === null) return null
  if (typeof value !== 'string') throw parseFailed(goTypeError(value, 'TxnOp.KV.Value', '[]uint8'))
  const bytes = decodeBase64(value)
  return bytes.length === 0 ? null : bytes
}

interface DecodedOp {
  readonly kv: KvOp | null
  readonly hasOtherOp: boolean
}

function decodeOp(raw: unknown): DecodedOp {
  if (raw === null) return { kv: null, hasOtherOp: false }
  if (!isJsonObject(raw)) throw parseFailed(goTypeError(raw, 'TxnOp', 'api.TxnOp'))
  const hasOtherOp = NON_KV_OPS.some((name) => {
    const value = goField(raw, name)
    return value !== undefined && value !== null
  })
  const kvRaw = goField(raw, 'KV')
  if (kvRaw === undefined || kvRaw === null) return { kv: null, hasOtherOp }
  if (!isJsonObject(kvRaw)) throw parseFailed(goTypeError(kvRaw, 'TxnOp.KV', 'api.KVTxnOp'))
  const kv: KvOp = {
    verb: readText(kvRaw, 'Verb'),
    key: readText(kvRaw, 'Key'),
    value: readValue(kvRaw),
    flags: readUint64(kvRaw, 'Flags'),
    index: readUint64(kvRaw, 'Index'),
    session: readText(kvRaw, 'Session'),
  }
  return { kv, hasOtherOp }
}

/** Parses a txn body. Throws ApiError with Consul's status and text. */
export function parseTxnBody(bodyText: string, limits: TxnLimits): ParsedTxn {
  const parsed = parseJson(bodyText)
  if (!parsed.ok) throw parseFailed(parsed.message)
  if (!Array.isArray(parsed.value)) {
    throw parseFailed(`json: cannot unmarshal ${goJsonTypeName(parsed.value)} into Go value of type api.TxnOps`)
  }
  const decoded = parsed.value.map(decodeOp)
  if (decoded.length > limits.txnMaxOps) {
    throw new ApiError(413, `Transaction contains too many operations (${decoded.length} > ${limits.txnMaxOps})`)
  }
  const ops: KvOp[] = []
  for (const op of decoded) {
    if (op.kv === null || op.hasOtherOp) throw parseFailed('only KV operations are supported')
    const size = op.kv.value?.length ?? 0
    if (size > limits.kvMaxValueSize) {
      throw new ApiError(413, `Value for key ${goQuote(op.kv.key)} is too large (${size} > ${limits.kvMaxValueSize} bytes)`)
    }
    ops.push(op.kv)
  }
  return { ops, isReadOnly: !ops.some((op) => isWriteVerb(op.verb)) }
}
