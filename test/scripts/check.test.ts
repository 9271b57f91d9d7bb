import assert from 'node:assert/strict'
import { test } from 'node:test'
import { checkJsSource, createScriptChecker } from '../../src/scripts/index.js'

test('the standalone checker accepts sources that compile and names the line of those that do not', async (t) => {
  const checker = await createScriptChecker()
  t.after(() => checker.close())
  assert.equal(checker.check('lua', 'script.test', 'return slardar.exit(errno.EXIT_TRY_CODE)'), null)
  assert.match(checker.check('lua', 'modules.bad', 'local t = {\nreturn t') ?? '', /^modules\.bad:2: /)
  assert.match(checker.check('lua', 'script.re', 'ngx.re.match("a", "a++")') ?? '', /pcre syntax not supported/)
  assert.equal(checker.check('js', 'script.test', 'exports.onRequest = (ctx) => ctx.exit(ctx.errno.EXIT_TRY_CODE)'), null)
  assert.equal(checker.check('js', 'lib.bad', 'exports.a = (\n'), 'lib.bad:2:1: unexpected end of input (Unexpected token); is a brace, bracket or string left open?')
})

test('the JS check is available synchronously and runs nothing', () => {
  assert.equal(checkJsSource('script.t', "throw new Error('never runs')"), null)
  assert.match(checkJsSource('script.t', "export default {}") ?? '', /^script\.t:1:1: ES module syntax/)
})
