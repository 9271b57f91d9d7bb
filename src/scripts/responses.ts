/** Bodies and headers of the responses a JS plugin generates with `ctx.respond` and `ctx.exit` (scripts.md §5, §7).
 *  The standard page and the errno JSON are byte for byte those of lua-compat's responses.ts, which lua-compat does
 *  not export; test/scripts/host.test.ts compares the two runtimes' answers so they cannot drift apart. */

import { STATUS_CODES } from 'node:http'
import { SERVER_HEADER } from '../version.js'

/** nginx's special-response page with Slardar's `slardar/<major.minor>` footer, CRLF line endings included. */
export function buildStandardPage(status: number): Buffer {
  const title = `${status} ${STATUS_CODES[status] ?? 'Unknown'}`
  return Buffer.from(
    `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n` +
    `<hr><center>${SERVER_HEADER}</center>\r\n</body>\r\n</html>\r\n`,
    'latin1',
  )
}

/** `{"code":<code>,"msg":"<msg>"}`, keys in that order (scripts.md §7). */
export function buildErrnoBody(code: number, msg: string): Buffer {
  return Buffer.from(`{"code":${code},"msg":${JSON.stringify(msg)}}`, 'utf8')
}

/** Statuses whose responses carry no body, so no Content-Length is sent. */
export function isBodylessStatus(status: number): boolean {
  return status === 204 || status === 304 || (status >= 100 && status < 200)
}

/** Framing belongs to the proxy: a script cannot set these on a response (a wrong Content-Length hangs clients). */
export const FRAMING_HEADERS: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'connection'])
