/** The product version, read once at start from package.json, and the `Server` header value built from it. */

import { readFileSync } from 'node:fs'

function readPackageVersion(): string {
  // dist/src/version.js and src/version.ts both sit two levels below the package root.
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8')
  return (JSON.parse(text) as { version: string }).version
}

export const PRODUCT_VERSION: string = readPackageVersion()

/** `slardar/<major.minor>` (proxy.md §4), as nginx-patched Slardar sent it. */
export const SERVER_HEADER: string = `slardar/${PRODUCT_VERSION.split('.').slice(0, 2).join('.')}`
