/** Process-wide hooks of the product belong to the running instance only. SingleProcess installs an
 *  `unhandledRejection` hook for JS plugins' dropped promises (scripts.md §5); a hook left behind after shutdown
 *  would rethrow, and so crash on, any later rejection in the same process that its closed store does not own. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startProduct } from '../support/product.js'

test('shutting the product down removes the process hooks it installed', async (t) => {
  const before = process.listenerCount('unhandledRejection')
  const product = await startProduct(t)
  assert.equal(process.listenerCount('unhandledRejection'), before + 1, 'the running product hooks unhandled rejections')
  await product.slardar.shutdown()
  assert.equal(process.listenerCount('unhandledRejection'), before)
})
