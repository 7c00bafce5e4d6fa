// `docknap.protect=true`: the server refuses a person's stop/pause/restart of
// a protected container or its stack with 409 `protected`; the UI then asks a
// second time, naming the protection, and sends the request again with force.
import { ApiError } from './api'
import { confirmAction } from './confirm'
import { ACTION_LABEL } from './format'
import type { Action } from './types'

export function isProtectedRefusal(e: unknown): e is ApiError {
  return e instanceof ApiError && e.status === 409 && e.code === 'protected'
}

/**
 * Runs `call(false)`; on a `protected` refusal asks again (naming the
 * protection, from the server's message) and, when confirmed, runs
 * `call(true)`. Resolves to null when the person declines.
 */
export async function actGuarded<T>(what: string, action: Action, call: (force: boolean) => Promise<T>): Promise<T | null> {
  try {
    return await call(false)
  } catch (e) {
    if (!isProtectedRefusal(e)) throw e
    const ok = await confirmAction({
      title: `${what} is protected`,
      message: `${e.message} Protected means its owner labelled it docknap.protect=true so that it is not taken down by accident. ${ACTION_LABEL[action]} it anyway?`,
      confirmLabel: `${ACTION_LABEL[action]} anyway`,
      danger: true,
    })
    return ok ? call(true) : null
  }
}
