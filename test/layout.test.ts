/** Keeps style.md's module-boundary table true: reads every import line under src/ and lua-compat/ and
 *  fails on an arrow the table does not allow, or on an outside package imported by a module that does
 *  not own it. */

import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** Folder (below src/) → folders it may import; "types:" entries may only be imported with `import type`. */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  config: [],
  checkups: ['types:config'],
  // style.md: scripts/ is the entry into lua-compat/, so it is the only src folder that imports it.
  scripts: ['config', 'types:checkups', 'lua-compat'],
  snapshot: ['checkups', 'scripts'],
  consul: ['config', 'checkups', 'scripts', 'snapshot'],
  'consul/devserver': [],
  proxy: ['checkups', 'scripts', 'snapshot'],
  stream: ['checkups', 'scripts', 'snapshot'],
  admin: ['checkups', 'snapshot', 'consul'],
}
/** Anyone may import these product-wide modules. */
const SHARED_FILES = new Set(['log', 'version'])
/** Outside packages with a single owner (style.md): package → the only place allowed to import it. */
const PACKAGE_OWNERS: Readonly<Record<string, readonly string[]>> = {
  consul: ['consul', 'test'],
  pino: ['log.ts', 'test'],
  'node:cluster': ['cluster'],
}

interface ImportLine {
  readonly file: string
  readonly specifier: string
  readonly isTypeOnly: boolean
}

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true })
  const nested = await Promise.all(
    entries.map((entry) => {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sourceFiles(path)
      return Promise.resolve(entry.name.endsWith('.ts') ? [path] : [])
    }),
  )
  return nested.flat()
}

async function importsOf(file: string): Promise<ImportLine[]> {
  const text = await readFile(file, 'utf8')
  const lines: ImportLine[] = []
  const pattern = /^(import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm
  for (const match of text.matchAll(pattern)) {
    lines.push({ file, specifier: (match[3] ?? match[4]) as string, isTypeOnly: match[2] !== undefined })
  }
  return lines
}

/** `src/consul/devserver/http.ts` → `consul/devserver`; `src/cli.ts` → `cli.ts`. */
function folderOf(file: string): string {
  if (!relative(join(ROOT, 'lua-compat'), file).startsWith('..')) return 'lua-compat'
  const path = relative(join(ROOT, 'src'), file).split('\\').join('/')
  const parts = path.split('/')
  if (parts.length === 1) return path
  return parts[0] === 'consul' && parts[1] === 'devserver' ? 'consul/devserver' : (parts[0] as string)
}

test('imports inside src/ follow the module-boundary table of style.md', async () => {
  const violations: string[] = []
  for (const file of await sourceFiles(join(ROOT, 'src'))) {
    const from = folderOf(file)
    const allowed = ALLOWED[from]
    for (const line of await importsOf(file)) {
      if (!line.specifier.startsWith('.')) continue
      const target = folderOf(resolve(dirname(file), line.specifier).replace(/\.js$/, '.ts'))
      const targetName = target.replace(/\.ts$/, '')
      if (target === from || SHARED_FILES.has(targetName) || allowed === undefined) continue
      const isAllowed = allowed.includes(target) || (line.isTypeOnly && allowed.includes(`types:${target}`))
      if (!isAllowed) violations.push(`${relative(ROOT, file)} imports ${line.specifier} (${from} → ${target}${line.isTypeOnly ? ', type-only' : ''})`)
    }
  }
  assert.deepEqual(violations, [])
})

test('outside packages with an owner are imported only by that owner', async () => {
  const violations: string[] = []
  const files = [
    ...(await sourceFiles(join(ROOT, 'src'))),
    ...(await sourceFiles(join(ROOT, 'lua-compat'))),
  ]
  for (const file of files) {
    const path = relative(ROOT, file)
    for (const line of await importsOf(file)) {
      const owners = PACKAGE_OWNERS[line.specifier]
      if (owners === undefined) continue
      const place = path.startsWith('src/') ? folderOf(file) : path
      if (!owners.includes(place)) violations.push(`${path} imports ${line.specifier}`)
    }
  }
  assert.deepEqual(violations, [])
})

test('lua-compat imports nothing from src/', async () => {
  const violations: string[] = []
  for (const file of await sourceFiles(join(ROOT, 'lua-compat'))) {
    for (const line of await importsOf(file)) {
      if (line.specifier.startsWith('.') && resolve(dirname(file), line.specifier).startsWith(join(ROOT, 'src'))) {
        violations.push(`${relative(ROOT, file)} imports ${line.specifier}`)
      }
    }
  }
  assert.deepEqual(violations, [])
})
