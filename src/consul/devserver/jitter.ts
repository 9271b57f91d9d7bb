/** The blocking-query jitter (consul.md §20): Consul adds a uniform random stagger in [0, wait/16) to each wait so
 *  that many watchers do not wake together. A seeded PRNG (mulberry32) keeps a test run reproducible when
 *  `jitter_seed` is given. */

import { randomInt } from 'node:crypto'

export class JitterSource {
  private state: number

  constructor(seed: number = randomInt(0, 2 ** 32)) {
    this.state = seed >>> 0
  }

  /** Uniform in [0, 1). */
  private next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }

  /** Extra milliseconds for a wait of `waitMs`: always >= 0 and < waitMs / 16 (0 for a zero wait). */
  drawMs(waitMs: number): number {
    return this.next() * (waitMs / 16)
  }
}
