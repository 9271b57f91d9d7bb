/** Admin-side errors (code prefix ADMIN_). Request problems are answers, not errors (replies.ts); this is
 *  for what stops the admin API from starting. */

export class AdminListenError extends Error {
  readonly code = 'ADMIN_LISTEN_FAILED'
  constructor(
    readonly address: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`admin: cannot listen on ${address} (${reason}); choose another admin.listen or set admin.enable=false`, options)
    this.name = 'AdminListenError'
  }
}
