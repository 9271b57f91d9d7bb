/** The ngx codecs that need node:crypto or node:zlib (scripts.md §6.4): md5, sha1, hmac_sha1, crc32, base64.
 *  Lua strings are byte strings; here they travel as "binary" JS strings (one char per byte, latin1), so
 *  md5_bin output can go back into encode_base64 unchanged. URI escaping and args live in the prelude (Lua). */

import { createHash, createHmac } from 'node:crypto'
import { crc32 as zlibCrc32 } from 'node:zlib'

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1')

export function md5Hex(s: string): string {
  return createHash('md5').update(bytes(s)).digest('hex')
}

export function md5Bin(s: string): string {
  return createHash('md5').update(bytes(s)).digest().toString('latin1')
}

export function sha1Bin(s: string): string {
  return createHash('sha1').update(bytes(s)).digest().toString('latin1')
}

export function hmacSha1(key: string, s: string): string {
  return createHmac('sha1', bytes(key)).update(bytes(s)).digest().toString('latin1')
}

/** crc32_short and crc32_long are the same CRC-32 in nginx; they differ only in the loop unrolling. */
export function crc32(s: string): number {
  return zlibCrc32(bytes(s))
}

export function encodeBase64(s: string, hasNoPadding: boolean): string {
  const encoded = bytes(s).toString('base64')
  return hasNoPadding ? encoded.replace(/=+$/, '') : encoded
}

const BASE64_BODY = /^[A-Za-z0-9+/]*$/

/** nginx's ngx_decode_base64: stops at the first '=', rejects any other character outside the alphabet and a
 *  length of 4n+1; padding is optional. Returns null for invalid input (ngx.decode_base64 gives nil). */
export function decodeBase64(s: string): string | null {
  const padAt = s.indexOf('=')
  const body = padAt === -1 ? s : s.slice(0, padAt)
  if (!BASE64_BODY.test(body) || body.length % 4 === 1) return null
  return Buffer.from(body, 'base64').toString('latin1')
}
