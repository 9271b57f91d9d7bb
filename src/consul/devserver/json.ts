/** JSON in and out of the embedded server, the way Consul's Go code does it.
 *  Out: uint64 fields (indexes, flags) are bigint and written as plain JSON numbers, never rounded; `pretty` is Go's
 *  MarshalIndent with four spaces. In: integers beyond 2^53 parse as bigint, syntax errors read like Go's
 *  encoding/json, and struct fields match case-insensitively as Go's decoder does. */

export type JsonOut =
  | null
  | boolean
  | number
  | bigint
  | string
  | readonly JsonOut[]
  | { readonly [field: string]: JsonOut | undefined }

function writeJson(value: JsonOut | undefined, indent: string | null, depth: number): string {
  if (value === null || value === undefined) return 'null'
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false'
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null'
    case 'bigint':
      return value.toString()
    case 'string':
      return JSON.stringify(value)
    default:
      break
  }
  const outer = indent === null ? '' : `\n${indent.repeat(depth)}`
  const inner = indent === null ? '' : `\n${indent.repeat(depth + 1)}`
  const colon = indent === null ? ':' : ': '
  if (Array.isArray(value)) {
    const items = value as readonly JsonOut[]
    if (items.length === 0) return '[]'
    return `[${items.map((item) => inner + writeJson(item, indent, depth + 1)).join(',')}${outer}]`
  }
  const fields = Object.entries(value as { readonly [field: string]: JsonOut | undefined }).filter(
    ([, field]) => field !== undefined,
  )
  if (fields.length === 0) return '{}'
  const body = fields.map(([name, field]) => inner + JSON.stringify(name) + colon + writeJson(field, indent, depth + 1))
  return `{${body.join(',')}${outer}}`
}

/** Compact JSON, or Go's MarshalIndent(v, "", "    ") plus a newline for `?pretty`. Undefined fields are left out. */
export function stringifyJson(value: JsonOut, isPretty = false): string {
  return isPretty ? `${writeJson(value, '    ', 0)}\n` : writeJson(value, null, 0)
}

export type JsonParse = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly message: string }

class JsonSyntaxError extends Error {}

/** Go's quoteChar for syntax errors: 'x', or '\'' for a quote. */
function describeChar(char: string): string {
  if (char === "'") return "'\\''"
  if (char === '"') return `'"'`
  const code = char.codePointAt(0) ?? 0
  if (code < 0x20) return `'\\x${code.toString(16).padStart(2, '0')}'`
  return `'${char}'`
}

class JsonReader {
  private pos = 0
  constructor(private readonly text: string) {}

  parseDocument(): unknown {
    this.skipSpace()
    const value = this.parseValue('looking for beginning of value')
    this.skipSpace()
    if (this.pos < this.text.length) this.fail('after top-level value')
    return value
  }

  private fail(context: string): never {
    if (this.pos >= this.text.length) throw new JsonSyntaxError('unexpected end of JSON input')
    throw new JsonSyntaxError(`invalid character ${describeChar(this.text[this.pos] ?? '')} ${context}`)
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && ' \t\n\r'.includes(this.text[this.pos] ?? '')) this.pos++
  }

  private parseValue(context: string): unknown {
    const char = this.text[this.pos]
    switch (char) {
      case '{':
        return this.parseObject()
      case '[':
        return this.parseArray()
      case '"':
        return this.parseString()
      case 't':
        return this.parseLiteral('true', true)
      case 'f':
        return this.parseLiteral('false', false)
      case 'n':
        return this.parseLiteral('null', null)
      default:
        if (char === '-' || (char !== undefined && char >= '0' && char <= '9')) return this.parseNumber()
        return this.fail(context)
    }
  }

  private parseLiteral(word: string, value: unknown): unknown {
    for (let i = 0; i < word.length; i++) {
      if (this.text[this.pos] !== word[i]) this.fail(`in literal ${word} (expecting '${word[i]}')`)
      this.pos++
    }
    return value
  }

  private parseNumber(): number | bigint {
    const match = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/.exec(this.text.slice(this.pos))
    if (match === null) {
      this.pos++
      return this.fail('in numeric literal')
    }
    this.pos += match[0].length
    const isInteger = match[2] === undefined && match[3] === undefined
    const asNumber = Number(match[0])
    return isInteger && !Number.isSafeInteger(asNumber) ? BigInt(match[0]) : asNumber
  }

  private parseString(): string {
    const start = this.pos
    this.pos++
    for (;;) {
      const char = this.text[this.pos]
      if (char === undefined) throw new JsonSyntaxError('unexpected end of JSON input')
      if (char === '"') break
      if (char === '\\') {
        const escape = this.text[this.pos + 1]
        if (escape === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(this.text.slice(this.pos + 2, this.pos + 6))) {
            this.pos += 2
            this.fail('in \\u hexadecimal character escape')
          }
          this.pos += 6
        } else if (escape !== undefined && '"\\/bfnrt'.includes(escape)) {
          this.pos += 2
        } else {
          this.pos++
          this.fail('in string escape code')
        }
        continue
      }
      if (char < ' ') this.fail('in string literal')
      this.pos++
    }
    this.pos++
    return JSON.parse(this.text.slice(start, this.pos)) as string
  }

  private parseArray(): unknown[] {
    const items: unknown[] = []
    this.pos++
    this.skipSpace()
    if (this.text[this.pos] === ']') {
      this.pos++
      return items
    }
    for (;;) {
      this.skipSpace()
      items.push(this.parseValue('looking for beginning of value'))
      this.skipSpace()
      const char = this.text[this.pos]
      this.pos++
      if (char === ']') return items
      if (char !== ',') {
        this.pos--
        this.fail('after array element')
      }
    }
  }

  private parseObject(): Record<string, unknown> {
    // A null prototype: a body field named "__proto__" must stay a plain field.
    const fields = Object.create(null) as Record<string, unknown>
    this.pos++
    this.skipSpace()
    if (this.text[this.pos] === '}') {
      this.pos++
      return fields
    }
    for (;;) {
      this.skipSpace()
      if (this.text[this.pos] !== '"') this.fail('looking for beginning of object key string')
      const name = this.parseString()
      this.skipSpace()
      if (this.text[this.pos] !== ':') this.fail('after object key')
      this.pos++
      this.skipSpace()
      fields[name] = this.parseValue('looking for beginning of value')
      this.skipSpace()
      const char = this.text[this.pos]
      this.pos++
      if (char === '}') return fields
      if (char !== ',') {
        this.pos--
        this.fail('after object key:value pair')
      }
    }
  }
}

/** Parses request-body JSON; integers beyond 2^53 come back as bigint so uint64 indexes survive exactly. */
export function parseJson(text: string): JsonParse {
  try {
    return { ok: true, value: new JsonReader(text).parseDocument() }
  } catch (err) {
    if (err instanceof JsonSyntaxError) return { ok: false, message: err.message }
    throw err
  }
}

export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The value Go's decoder would put in struct field `name`: keys match case-insensitively and the last match wins. */
export function goField(object: Record<string, unknown>, name: string): unknown {
  const wanted = name.toLowerCase()
  let found: unknown
  for (const [key, value] of Object.entries(object)) {
    if (key.toLowerCase() === wanted) found = value
  }
  return found
}

/** The JSON type name Go puts in "cannot unmarshal <type> into ..." errors. */
export function goJsonTypeName(value: unknown): string {
  if (Array.isArray(value)) return 'array'
  if (value === null) return 'null'
  if (typeof value === 'boolean') return 'bool'
  if (typeof value === 'number' || typeof value === 'bigint') return 'number'
  return typeof value === 'string' ? 'string' : 'object'
}

/** Go's UnmarshalTypeError text for a struct field. */
export function goTypeError(value: unknown, structField: string, goType: string): string {
  return `json: cannot unmarshal ${goJsonTypeName(value)} into Go struct field ${structField} of type ${goType}`
}
