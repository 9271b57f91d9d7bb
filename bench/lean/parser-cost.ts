/** Micro-benchmark: what parsing one request head costs with the lean parser (http-head.ts) versus Node's own
 *  llhttp reached through `_http_common`'s HTTPParser on a raw buffer (the route a lean front could take to keep
 *  Node's strict parser). Prints ns per head for each, best of 5 runs, and whether loading HTTPParser warned.
 *
 *    node dist/bench/lean/parser-cost.js [iterations=300000] */

import { createRequire } from 'node:module'
import { findHeadEnd, parseRequestHead } from './http-head.js'

/** The slice of llhttp's binding this needs; `_http_common` has no type declarations. */
interface LlhttpParser {
  initialize(type: number, resource: object): void
  execute(bytes: Buffer): number | Error
  finish(): void
  [callback: number]: unknown
}
interface LlhttpParserClass {
  new (): LlhttpParser
  readonly REQUEST: number
  readonly kOnHeadersComplete: number
  readonly kOnMessageComplete: number
}

const HEAD = Buffer.from(
  'GET /api/v1/items?page=2 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk/4.2\r\nAccept: */*\r\n' +
    'X-Forwarded-For: 10.1.2.3\r\nAccept-Encoding: gzip\r\nCookie: session=abcdef0123456789\r\n\r\n',
  'latin1',
)

function timeNsPerOp(iterations: number, work: () => void): number {
  let best = Number.POSITIVE_INFINITY
  for (let run = 0; run < 5; run++) {
    const started = process.hrtime.bigint()
    for (let i = 0; i < iterations; i++) work()
    best = Math.min(best, Number(process.hrtime.bigint() - started) / iterations)
  }
  return best
}

function main(): void {
  const iterations = Number(process.argv[2] ?? 300_000)
  const warnings: string[] = []
  process.on('warning', (warning) => warnings.push(warning.message))
  const { HTTPParser } = createRequire(import.meta.url)('_http_common') as { HTTPParser: LlhttpParserClass }

  let checksum = 0
  const lean = timeNsPerOp(iterations, () => {
    const end = findHeadEnd(HEAD, 0)
    const parsed = parseRequestHead(HEAD.toString('latin1', 0, end))
    if (parsed.ok) checksum += parsed.head.headers.length
  })

  const parser = new HTTPParser()
  parser.initialize(HTTPParser.REQUEST, {})
  parser[HTTPParser.kOnHeadersComplete] = (_major: number, _minor: number, headers: string[]) => {
    checksum += headers.length
  }
  parser[HTTPParser.kOnMessageComplete] = () => undefined
  // One parser per connection, reused across keep-alive requests: the cost below is per head, not per parser.
  const llhttp = timeNsPerOp(iterations, () => {
    const result = parser.execute(HEAD)
    if (result instanceof Error) throw result
  })

  process.stdout.write(`request head of ${HEAD.length} bytes, ${iterations} iterations, best of 5 (checksum ${checksum})\n`)
  process.stdout.write(`lean parseRequestHead   ${lean.toFixed(0).padStart(6)} ns/head\n`)
  process.stdout.write(`llhttp via _http_common ${llhttp.toFixed(0).padStart(6)} ns/head\n`)
  process.stdout.write(`warnings while loading _http_common: ${warnings.length === 0 ? 'none' : warnings.join('; ')}\n`)
}

main()
