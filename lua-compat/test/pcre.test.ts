/** The PCRE -> JS translation table of scripts.md §6.5, checked on translatePcre directly: each rule by what the
 *  translated RegExp matches, and each unsupported construct by its exact error text. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { translatePcre, type TranslatedPattern } from '../pcre.js'

function translated(pattern: string, options = ''): TranslatedPattern {
  const result = translatePcre(pattern, options)
  if (!result.ok) assert.fail(result.error)
  return result.pattern
}

function regex(pattern: string, options = ''): RegExp {
  const t = translated(pattern, options)
  return new RegExp(t.source, t.flags)
}

function failure(pattern: string, options = ''): string {
  const result = translatePcre(pattern, options)
  if (result.ok) assert.fail(`expected ${pattern} to be rejected, got ${result.pattern.source}`)
  return result.error
}

test('options i, m, s and u map to the same JS flags; a means anchored; j, o and J are ignored', () => {
  assert.equal(translated('x', 'imsujoJ').flags, 'imsu')
  assert.equal(translated('x', 'a').isAnchored, true)
  assert.equal(translated('x', 'jo').isAnchored, false)
})

test('options d and D are unsupported and unknown options are rejected', () => {
  assert.equal(failure('x', 'id'), 'pcre syntax not supported: option "d" at offset 1')
  assert.equal(failure('x', 'D'), 'pcre syntax not supported: option "D" at offset 0')
  assert.equal(failure('x', 'z'), 'unknown flag "z"')
})

test('option x strips whitespace and # comments outside classes, but keeps escaped spaces and class contents', () => {
  const re = regex('a b  # comment\n c [ ]\\ d', 'x')
  assert.ok(re.test('abc  d'))
  assert.ok(!re.test('a b c  d'))
})

test('(?P<n>...) becomes (?<n>...), (?P=n) a back reference, and named groups are listed with their index', () => {
  const t = translated('(x)(?P<year>\\d{4})-(?<mon>\\d\\d)(?P=year)')
  assert.deepEqual(t.groupNames, [['year', 2], ['mon', 3]])
  assert.equal(t.groupCount, 3)
  assert.deepEqual({ ...regex('(?P<year>\\d{4})-(?P=year)').exec('2024-2024')?.groups }, { year: '2024' })
})

test('\\A is the start and \\z the end of the subject, even in multiline mode', () => {
  const re = regex('\\Aab\\z', 'm')
  assert.ok(re.test('ab'))
  assert.ok(!re.test('x\nab'))
  assert.ok(!re.test('ab\n'))
})

test('\\Z and a non-multiline $ also match before a final newline', () => {
  assert.ok(regex('ab\\Z').test('ab\n'))
  assert.ok(regex('ab$').test('ab\n'))
  assert.ok(!regex('ab$').test('ab\nx'))
  assert.ok(regex('^ab$', 'm').test('x\nab\ny'))
})

test('\\Q...\\E is an escaped literal, to \\E or the end', () => {
  assert.ok(regex('\\Qa.b*c\\E+').test('a.b*cc'))
  assert.ok(!regex('\\Qa.b\\E').test('axb'))
  assert.ok(regex('x\\Q(*)').test('x(*)'))
})

test('POSIX classes become ASCII ranges', () => {
  const re = regex('^[[:alpha:]][[:digit:]][[:space:]][[:punct:]][[:xdigit:]][[:upper:]][[:lower:]][[:alnum:]]$')
  assert.ok(re.test('a1 !fXyZ'))
  assert.ok(!re.test('a1 !gXyZ'))
  assert.equal(failure('[[:^alpha:]]'), 'pcre syntax not supported: [:^alpha:] at offset 1')
})

test('\\h is [ \\t] and \\R is \\r\\n, \\n or \\r', () => {
  assert.ok(regex('a\\hb').test('a\tb'))
  assert.ok(!regex('a\\hb').test('a\nb'))
  assert.deepEqual('a\r\nb\rc\nd'.split(regex('\\R')), ['a', 'b', 'c', 'd'])
})

test('a leading (?i), (?m), (?s) or (?x), alone or combined, becomes a flag', () => {
  assert.equal(translated('(?i)abc').flags, 'i')
  assert.equal(translated('(?ms)(?x) a').flags, 'ms')
  assert.equal(translated('(?ms)(?x) a').source, 'a')
  assert.ok(regex('(?s)a.b').test('a\nb'))
})

test('. does not match \\n but does match \\r, as in PCRE', () => {
  assert.ok(!regex('a.b').test('a\nb'))
  assert.ok(regex('a.b').test('a\rb'))
})

test('\\s is ASCII whitespace only, so a UTF-8 continuation byte 0xA0 is not a space', () => {
  assert.ok(!regex('\\s').test('\u00a0'))
  assert.ok(regex('\\S').test('\u00a0'))
})

test('lone ] and } and non-quantifier braces are literals, valid under the u flag too', () => {
  assert.ok(regex('a]b}c{x', 'u').test('a]b}c{x'))
  assert.ok(regex('a{2}', 'u').test('aa'))
})

test('hex, octal and \\x{...} escapes become \\xHH, or code points in u mode', () => {
  assert.ok(regex('\\x41\\101\\x{42}\\o{103}\\e').test('AABC\x1b'))
  assert.ok(regex('\\x{263a}', 'u').test('\u263a'))
  assert.match(failure('\\x{263a}'), /^pcre_compile\(\) failed: character value in \\x\{\} or \\o\{\} is too large/)
})

test('\\g references: numbered, relative and named', () => {
  assert.ok(regex('(a)(b)\\g{-1}\\g1\\g{2}').test('abbab'))
  assert.ok(regex('(?<n>z)\\g{n}').test('zz'))
})

test('\\p needs the u option', () => {
  assert.ok(regex('\\p{Lu}\\pL', 'u').test('Ab'))
  assert.equal(failure('\\pL'), 'pcre syntax not supported: \\p without the u option at offset 0')
})

test('(?#...) comments are removed', () => {
  assert.equal(translated('a(?#note)b').source, 'ab')
})

test('each unsupported construct is reported as "pcre syntax not supported: <construct> at offset <k>"', () => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ['ab*+', 'possessive quantifier at offset 2'],
    ['a?+', 'possessive quantifier at offset 1'],
    ['x{1,3}+', 'possessive quantifier at offset 1'],
    ['a(?>bc)', 'atomic group at offset 1'],
    ['(?R)', 'recursion at offset 0'],
    ['(a)(?1)', 'recursion at offset 3'],
    ['(?-1)', 'recursion at offset 0'],
    ['(?&name)', 'recursion at offset 0'],
    ['(?P>name)', 'recursion at offset 0'],
    ['(?<n>a)\\g<n>', 'recursion at offset 7'],
    ['(?(1)a|b)', 'conditional group at offset 0'],
    ['ab\\Kc', '\\K at offset 2'],
    ['\\Gx', '\\G at offset 0'],
    ['\\X', '\\X at offset 0'],
    ['a(?C1)b', 'callout at offset 1'],
    ['(*UTF8)abc', '(*UTF8) at offset 0'],
    ['a(*SKIP)b', '(*SKIP) at offset 1'],
    ['a(?i)b', 'inline flags at offset 1'],
    ['(?i:a)', 'inline flags at offset 0'],
    ['(?|(a)|(b))', 'branch reset group at offset 0'],
  ]
  for (const [pattern, message] of cases) {
    assert.equal(failure(pattern), `pcre syntax not supported: ${message}`, pattern)
  }
})

test('a pattern PCRE itself rejects is reported like pcre_compile()', () => {
  assert.equal(failure('[abc'), 'pcre_compile() failed: missing terminating ] for character class in "[abc"')
  assert.equal(failure('(?Qx)'), 'pcre_compile() failed: unrecognized character after (? or (?- in "(?Qx)"')
})
