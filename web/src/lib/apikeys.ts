// Pure helpers of the API keys panel (account page).
import { ROLES, type ApiKey, type Role } from './types'

/** The roles a user may give a key: theirs and those below it. */
export function rolesUpTo(role: Role): Role[] {
  return ROLES.filter((r) => ROLES.indexOf(r) <= ROLES.indexOf(role))
}

/** The expiry choices, in days (0: never). */
export const EXPIRY_DAYS = [0, 7, 30, 90, 365] as const

export function expiryLabel(days: number): string {
  return days === 0 ? 'never' : days === 365 ? 'in 1 year' : `in ${days} days`
}

/** `expires_at` for a key made now that lasts `days` (undefined: never). */
export function expiresAt(days: number, now: Date = new Date()): string | undefined {
  return days === 0 ? undefined : new Date(now.getTime() + days * 86_400_000).toISOString()
}

export function isExpired(key: Pick<ApiKey, 'expires_at'>, now: number = Date.now()): boolean {
  return key.expires_at !== null && Date.parse(key.expires_at) <= now
}

/** What the server accepts as a key name: 1 to 64 letters, digits, '.', '_' or '-'. */
export function keyNameProblem(name: string): string | null {
  if (!name) return 'Enter a name, such as ci or prometheus.'
  if ([...name].length > 64) return 'A name has at most 64 characters.'
  if (!/^[\p{L}\p{N}._-]+$/u.test(name)) return "Use letters, digits, '.', '_' or '-' only (no spaces or ':')."
  return null
}
