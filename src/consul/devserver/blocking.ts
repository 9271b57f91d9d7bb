/** Parked blocking queries (consul.md §20). Owns the waiters, what wakes each one, and its timer (wait plus jitter).
 *  A waiter is woken only by a change to what it watches: its exact key (never a key sharing its prefix), any key
 *  under its prefix, the session table, or the catalog. What to answer, and whether the new index is high enough
 *  to answer at all, is the caller's decision (http.ts): the hub only calls back. */

import { JitterSource } from './jitter.js'

export type WatchTopic =
  | { readonly kind: 'key'; readonly key: string }
  | { readonly kind: 'prefix'; readonly prefix: string }
  | { readonly kind: 'sessions' }
  | { readonly kind: 'catalog' }

export interface WaiterHandlers {
  /** Something the waiter watches changed; return true when it answered (the waiter is then dropped). */
  onChange(): boolean
  /** The wait ran out; the waiter is dropped after this call. */
  onTimeout(): void
}

interface Waiter {
  readonly topic: WatchTopic
  readonly handlers: WaiterHandlers
  timer: NodeJS.Timeout | null
}

export class BlockingHub {
  private readonly byKey = new Map<string, Set<Waiter>>()
  private readonly byPrefix = new Set<Waiter>()
  private readonly onSessions = new Set<Waiter>()
  private readonly onCatalog = new Set<Waiter>()
  private parked = 0

  constructor(private readonly jitter: JitterSource) {}

  /** Number of parked queries (DevServer.stats().waiters). */
  get count(): number {
    return this.parked
  }

  /** Parks a query for `waitMs` plus jitter. Returns the function that drops it (socket closed). */
  park(topic: WatchTopic, waitMs: number, handlers: WaiterHandlers): () => void {
    const waiter: Waiter = { topic, handlers, timer: null }
    this.setFor(topic).add(waiter)
    this.parked++
    waiter.timer = setTimeout(() => {
      if (this.drop(waiter)) handlers.onTimeout()
    }, waitMs + this.jitter.drawMs(waitMs))
    waiter.timer.unref()
    return () => void this.drop(waiter)
  }

  /** Wakes the waiters of these keys and of every prefix that contains one of them. */
  notifyKeys(keys: readonly string[]): void {
    if (keys.length === 0) return
    const woken = new Set<Waiter>()
    for (const key of keys) for (const waiter of this.byKey.get(key) ?? []) woken.add(waiter)
    for (const waiter of this.byPrefix) {
      const prefix = (waiter.topic as { readonly prefix: string }).prefix
      if (keys.some((key) => key.startsWith(prefix))) woken.add(waiter)
    }
    this.wake(woken)
  }

  notifySessions(): void {
    this.wake(new Set(this.onSessions))
  }

  notifyCatalog(): void {
    this.wake(new Set(this.onCatalog))
  }

  /** Drops every waiter without answering (server shutdown: their sockets are about to close). */
  closeAll(): void {
    for (const set of [...this.byKey.values(), this.byPrefix, this.onSessions, this.onCatalog]) {
      for (const waiter of [...set]) this.drop(waiter)
    }
  }

  private wake(waiters: ReadonlySet<Waiter>): void {
    for (const waiter of waiters) {
      if (waiter.timer === null) continue
      if (waiter.handlers.onChange()) this.drop(waiter)
    }
  }

  private setFor(topic: WatchTopic): Set<Waiter> {
    switch (topic.kind) {
      case 'key': {
        let set = this.byKey.get(topic.key)
        if (set === undefined) {
          set = new Set()
          this.byKey.set(topic.key, set)
        }
        return set
      }
      case 'prefix':
        return this.byPrefix
      case 'sessions':
        return this.onSessions
      case 'catalog':
        return this.onCatalog
    }
  }

  /** Removes a waiter once; false if it was already gone. */
  private drop(waiter: Waiter): boolean {
    if (waiter.timer === null) return false
    clearTimeout(waiter.timer)
    waiter.timer = null
    this.parked--
    const set = this.setFor(waiter.topic)
    set.delete(waiter)
    if (waiter.topic.kind === 'key' && set.size === 0) this.byKey.delete(waiter.topic.key)
    return true
  }
}
