/** Responses written straight onto a socket that Node's ServerResponse no longer (or never) manages: requests the
 *  parser refused (400, 408, 431 from `clientError`) and upgrade requests answered by the proxy. Always ends the
 *  connection. Not on the hot path, so the head is built as a string. */
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'

/** Head and body of a `Connection: close` response; `headers` is a flat `[name, value, …]` list. */
export function buildRawResponse(status: number, headers: readonly string[], body: Buffer, isHead: boolean): Buffer {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\nDate: ${new Date().toUTCString()}\r\n`
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`
  head += 'Connection: close\r\n\r\n'
  return isHead || body.length === 0 ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), body])
}

/** Writes the response, then closes the connection. The socket is ended rather than destroyed so the response is not
 *  lost to a reset over unread request bytes; a client that never closes its side is cut after a short grace. */
export function endWithResponse(socket: Socket, response: Buffer): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  socket.end(response)
  socket.setTimeout(CLOSE_GRACE_MS)
  socket.once('timeout', destroySocket)
}

const CLOSE_GRACE_MS = 2000

function destroySocket(this: Socket): void {
  this.destroy()
}
