/** Bodies of the responses a Lua script generates (scripts.md §6.3, §7): nginx's standard error page with a
 *  slardar footer, and slardar.exit's JSON. Pure; header assembly is request-state.ts's job. */

import { STATUS_CODES } from 'node:http'

/** "1.1.2" -> "slardar/1.1", the footer nginx (patched by Slardar) prints under its error pages. */
export function serverToken(productVersion: string): string {
  const [major = '0', minor = '0'] = productVersion.split('.')
  return `slardar/${major}.${minor}`
}

function reasonPhrase(status: number): string {
  return STATUS_CODES[status] ?? 'Unknown'
}

/** nginx's special-response page, CRLF line endings included, e.g. "<html>\r\n<head><title>403 Forbidden</title>...". */
export function buildStandardPage(status: number, token: string): Buffer {
  const title = `${status} ${reasonPhrase(status)}`
  return Buffer.from(
    `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n` +
    `<hr><center>${token}</center>\r\n</body>\r\n</html>\r\n`,
    'latin1',
  )
}

/** `{"code":<code>,"msg":"<msg>"}` with the keys in that order (Slardar's cjson gave hash order; scripts.md §7).
 *  `msg` is a binary string; JSON.stringify escapes quotes and controls and leaves its bytes as they are. */
export function buildErrnoBody(code: number, msg: string): Buffer {
  return Buffer.from(`{"code":${code},"msg":${JSON.stringify(msg)}}`, 'latin1')
}

/** Statuses whose responses carry no body, so no Content-Length is sent. */
export function isBodylessStatus(status: number): boolean {
  return status === 204 || status === 304 || (status >= 100 && status < 200)
}
