/** Polls a condition until it holds or a deadline passes. Timing-dependent tests use this instead of sleeps:
 *  on timeout the error names what was awaited and the last value seen, so a red test explains itself. */

export interface WaitForOptions {
  readonly withinMs: number
  readonly what: string
  readonly everyMs?: number
}

export async function waitFor<T>(
  probe: () => T | Promise<T>,
  options: WaitForOptions,
): Promise<Exclude<T, false | null | undefined>> {
  const deadline = performance.now() + options.withinMs
  const everyMs = options.everyMs ?? 20
  let last: unknown
  for (;;) {
    try {
      last = await probe()
      if (last !== false && last !== null && last !== undefined) return last as Exclude<T, false | null | undefined>
    } catch (err) {
      last = err
    }
    if (performance.now() >= deadline) {
      const shown = last instanceof Error ? `${last.name}: ${last.message}` : JSON.stringify(last)
      throw new Error(`timed out after ${options.withinMs} ms waiting for ${options.what}; last value: ${shown}`)
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** Resolves after `ms`. Only for quiet windows ("nothing happens for T"), never to wait for something to happen. */
export function quietWindow(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
