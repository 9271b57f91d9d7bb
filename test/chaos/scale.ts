/** The scale knob of the chaos tests (reliability.md: long runs behind `make test-chaos`, which CI also runs with
 *  smaller counts). `CHAOS_SCALE=full` gives reliability.md's counts; anything else gives the small counts that
 *  `make test` runs on every change. Every figure a chaos test uses comes from here, so the two scales differ only
 *  in this file. */

export interface ChaosScale {
  readonly name: 'small' | 'full'
  /** Keep-alive client connections of a load loop. */
  readonly loadConcurrency: number
  /** Churn: how long 10 upstream updates/s run under load, after `churnWarmUpSeconds` of the same. */
  readonly churnSeconds: number
  readonly churnWarmUpSeconds: number
  /** Allowed RSS growth over the churn, or null to only report it: in the small run V8 is still growing its heap
   *  under load and churn (measured: +25–55 % over 15 s, flat after ~15–20 s), so no bound there means anything. */
  readonly churnRssGrowthLimit: number | null
  readonly churnConcurrency: number
  /** Soak: requests sent after `soakWarmUpRequests`. */
  readonly soakRequests: number
  readonly soakWarmUpRequests: number
  /** Upper bound on the soak's duration; reaching it fails the test (the machine is too slow to judge). */
  readonly soakMaxMs: number
  /** Allowed growth of resident memory in use (RSS less the V8 heap's empty capacity, after a forced GC; see
   *  soak.test.ts) from after the warm-up to after the soak, as a fraction: reliability.md's 10 %. */
  readonly soakMemoryGrowthLimit: number
  /** RSS is compared as the lowest sample over a window this long at each end (GC troughs, not sawtooth peaks). */
  readonly rssWindowMs: number
  /** Upstreams in KV for the large-table test. */
  readonly upstreamCount: number
  /** Generated admin requests. */
  readonly adminFuzzCases: number
}

const SMALL: ChaosScale = {
  name: 'small',
  loadConcurrency: 16,
  churnSeconds: 10,
  churnWarmUpSeconds: 5,
  churnRssGrowthLimit: null,
  churnConcurrency: 32,
  soakRequests: 20_000,
  soakWarmUpRequests: 30_000,
  soakMaxMs: 60_000,
  soakMemoryGrowthLimit: 0.1,
  rssWindowMs: 1_000,
  upstreamCount: 2_000,
  adminFuzzCases: 300,
}

const FULL: ChaosScale = {
  name: 'full',
  loadConcurrency: 32,
  churnSeconds: 60,
  churnWarmUpSeconds: 15,
  churnRssGrowthLimit: 0.1,
  churnConcurrency: 64,
  soakRequests: 1_000_000,
  soakWarmUpRequests: 100_000,
  soakMaxMs: 20 * 60_000,
  soakMemoryGrowthLimit: 0.1,
  rssWindowMs: 3_000,
  upstreamCount: 10_000,
  adminFuzzCases: 1_000,
}

export const scale: ChaosScale = process.env['CHAOS_SCALE'] === 'full' ? FULL : SMALL
