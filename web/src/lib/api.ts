// A small typed client for the DockNap HTTP API. Authentication is the
// HttpOnly session cookie only: the token in the login answer is never kept.
import type {
  Action, ActionResult, ApiKey, CreatedApiKey, AuditPage, AuditQuery, BulkResponse, BulkTarget, Container, Desired, Health, HostInput, HostPatch,
  HostView, LoginResponse, NotifyChannel, NotifyChannelInput, NotifyDelivery, NotifyTestResult, Providers, Role, Schedule, ScheduleInput, Service, Stack, ActionTargetType, TotpSetup, Upcoming, User, Window, WindowInput,
  WindowPreview, WindowPreviewRequest,
} from './types'
import { actionPath, hostQuery } from './hosts'
import type { LogLine, Stats } from './insight'

export type LogSource = 'containers' | 'stacks'

/** The log of a container or (merged) a stack: `tail` lines, `since` a time or `10m`. */
export function logsPath(kind: LogSource, name: string, host: string | undefined, q: { tail?: number; since?: string; follow?: boolean }): string {
  return `/api/${kind}/${encodeURIComponent(name)}/logs${qs({ host, tail: q.tail, since: q.since, follow: q.follow || undefined })}`
}
import type { ImportMode, ImportResult } from './transfer'

export class ApiError extends Error {
  readonly status: number
  readonly code: string
  /** Seconds to wait, from `Retry-After` on a 429. */
  readonly retryAfter: number | null

  constructor(status: number, code: string, message: string, retryAfter: number | null = null) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.retryAfter = retryAfter
  }
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>

export interface ClientOptions {
  fetch?: FetchLike
  base?: string
  /** Called once for any 401 on a request other than login / me. */
  onUnauthorized?: () => void
}

const FALLBACK_MESSAGES: Record<number, string> = {
  400: 'The request was not valid.',
  401: 'You are not signed in.',
  403: 'You are not allowed to do that.',
  404: 'Not found.',
  409: 'That conflicts with the current state.',
  413: 'The request is too large.',
  429: 'Too many attempts. Please wait.',
  503: 'The Docker Engine is unreachable.',
}

export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (!value) return null
  const v = value.trim()
  if (/^\d+$/.test(v)) return Number(v)
  const t = Date.parse(v)
  if (Number.isNaN(t)) return null
  return Math.max(0, Math.ceil((t - now) / 1000))
}

/** Turns a non-2xx response into an ApiError, reading `{"error":{"code","message"}}`. */
export async function errorFromResponse(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`
  let message = FALLBACK_MESSAGES[res.status] ?? `Request failed (HTTP ${res.status}).`
  try {
    const text = await res.text()
    if (text) {
      const body = JSON.parse(text) as unknown
      const err = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error
      if (err && typeof err === 'object') {
        if (typeof err.code === 'string' && err.code) code = err.code
        if (typeof err.message === 'string' && err.message) message = err.message
      }
    }
  } catch {
    // not JSON: keep the fallback
  }
  const retry = res.status === 429 ? parseRetryAfter(res.headers.get('Retry-After')) : null
  return new ApiError(res.status, code, message, retry)
}

function qs(params: Record<string, string | number | boolean | null | undefined>): string {
  const sp = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue
    sp.set(k, String(v))
  }
  const s = sp.toString()
  return s ? `?${s}` : ''
}

const enc = encodeURIComponent

/** A path with `force=true` added to its query. */
export function withForce(path: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}force=true`
}

export class Client {
  private readonly fetchFn: FetchLike
  private readonly base: string
  onUnauthorized: (() => void) | undefined

  constructor(opts: ClientOptions = {}) {
    this.fetchFn = opts.fetch ?? ((input, init) => fetch(input, init))
    this.base = opts.base ?? ''
    this.onUnauthorized = opts.onUnauthorized
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const init: RequestInit = {
      method,
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
    }
    if (body !== undefined) {
      init.body = JSON.stringify(body)
      init.headers = { Accept: 'application/json', 'Content-Type': 'application/json' }
    }
    let res: Response
    try {
      res = await this.fetchFn(this.base + path, init)
    } catch {
      throw new ApiError(0, 'network_error', 'Cannot reach the DockNap server. Check your connection.')
    }
    if (!res.ok) {
      const err = await errorFromResponse(res)
      if (res.status === 401 && path !== '/api/auth/login' && path !== '/api/auth/me') {
        this.onUnauthorized?.()
      }
      throw err
    }
    if (res.status === 204) return undefined as T
    const text = await res.text()
    return (text ? JSON.parse(text) : undefined) as T
  }

  // auth
  /** `totp`: a two-factor code or a recovery code, for users who have it on. */
  login(username: string, password: string, totp?: string) {
    return this.request<LoginResponse>('POST', '/api/auth/login', totp ? { username, password, totp } : { username, password })
  }
  logout() { return this.request<void>('POST', '/api/auth/logout') }
  providers() { return this.request<Providers>('GET', '/api/auth/providers') }
  me() { return this.request<User>('GET', '/api/auth/me') }
  changePassword(current_password: string, new_password: string) {
    return this.request<void>('PUT', '/api/auth/password', { current_password, new_password })
  }
  totpSetup() { return this.request<TotpSetup>('POST', '/api/auth/totp/setup') }
  totpEnable(code: string) {
    return this.request<{ recovery_codes: string[] }>('POST', '/api/auth/totp/enable', { code })
  }
  totpDisable(password: string, code: string) {
    return this.request<void>('POST', '/api/auth/totp/disable', { password, code })
  }

  // API keys: `all` (admins) lists everyone's
  apiKeys(all = false) { return this.request<ApiKey[]>('GET', `/api/tokens${all ? '?all=true' : ''}`) }
  createApiKey(body: { name: string; role: Role; expires_at?: string }) {
    return this.request<CreatedApiKey>('POST', '/api/tokens', body)
  }
  deleteApiKey(id: number) { return this.request<void>('DELETE', `/api/tokens/${id}`) }

  // users
  users() { return this.request<User[]>('GET', '/api/users') }
  createUser(username: string, password: string, role: Role) {
    return this.request<User>('POST', '/api/users', { username, password, role })
  }
  updateUser(id: number, patch: { role?: Role; password?: string; reset_totp?: boolean }) {
    return this.request<User>('PUT', `/api/users/${id}`, patch)
  }
  deleteUser(id: number) { return this.request<void>('DELETE', `/api/users/${id}`) }

  // docker: lists cover every host unless `host` narrows them; a target is (host, name)
  containers(host?: string) { return this.request<Container[]>('GET', `/api/containers${hostQuery(host)}`) }
  stacks(host?: string) { return this.request<Stack[]>('GET', `/api/stacks${hostQuery(host)}`) }
  stack(name: string, host?: string) { return this.request<Stack>('GET', `/api/stacks/${enc(name)}${hostQuery(host)}`) }
  /** `force` overrides `docknap.protect=true` (the UI sends it after asking twice). */
  act(type: ActionTargetType, name: string, action: Action, host?: string, force = false) {
    const path = actionPath(type, name, action, host)
    return this.request<ActionResult>('POST', force ? withForce(path) : path)
  }
  logs(kind: LogSource, name: string, host: string | undefined, q: { tail?: number; since?: string }) {
    return this.request<{ lines: LogLine[] }>('GET', logsPath(kind, name, host, q))
  }
  stats(kind: LogSource, name: string, host?: string) {
    return this.request<Stats>('GET', `/api/${kind}/${enc(name)}/stats${hostQuery(host)}`)
  }
  /** Swarm services of a manager host. */
  services(host: string) { return this.request<Service[]>('GET', `/api/services${hostQuery(host)}`) }

  // hosts (changes: admin only)
  hosts() { return this.request<HostView[]>('GET', '/api/hosts') }
  host(name: string) { return this.request<HostView>('GET', `/api/hosts/${enc(name)}`) }
  createHost(input: HostInput) { return this.request<HostView>('POST', '/api/hosts', input) }
  updateHost(name: string, patch: HostPatch) { return this.request<HostView>('PUT', `/api/hosts/${enc(name)}`, patch) }
  deleteHost(name: string) { return this.request<void>('DELETE', `/api/hosts/${enc(name)}`) }

  // notification channels (admin only)
  notifications() { return this.request<NotifyChannel[]>('GET', '/api/notifications') }
  createNotification(input: NotifyChannelInput) { return this.request<NotifyChannel>('POST', '/api/notifications', input) }
  updateNotification(id: number, input: NotifyChannelInput) { return this.request<NotifyChannel>('PUT', `/api/notifications/${id}`, input) }
  deleteNotification(id: number) { return this.request<void>('DELETE', `/api/notifications/${id}`) }
  testNotification(id: number) { return this.request<NotifyTestResult>('POST', `/api/notifications/${id}/test`) }
  notificationDeliveries(id: number, limit = 20) { return this.request<NotifyDelivery[]>('GET', `/api/notifications/${id}/deliveries${qs({ limit })}`) }
  notificationFailures(limit = 5) { return this.request<NotifyDelivery[]>('GET', `/api/notifications/failures${qs({ limit })}`) }

  // schedules
  schedules() { return this.request<Schedule[]>('GET', '/api/schedules') }
  schedule(id: number) { return this.request<Schedule>('GET', `/api/schedules/${id}`) }
  /** With `dryRun` the server validates it and answers with what it would save (and its conflicts), storing nothing. */
  createSchedule(input: ScheduleInput, dryRun = false) {
    return this.request<Schedule>('POST', `/api/schedules${dryRun ? '?dry_run=true' : ''}`, input)
  }
  updateSchedule(id: number, input: ScheduleInput, dryRun = false) {
    return this.request<Schedule>('PUT', `/api/schedules/${id}${dryRun ? '?dry_run=true' : ''}`, input)
  }
  deleteSchedule(id: number) { return this.request<void>('DELETE', `/api/schedules/${id}`) }
  runSchedule(id: number) { return this.request<ActionResult>('POST', `/api/schedules/${id}/run`) }
  upcoming(limit: number, until?: Date, perSchedule?: number) {
    const query = qs({ limit, until: until?.toISOString(), per_schedule: perSchedule })
    return this.request<Upcoming[]>('GET', `/api/schedules/upcoming${query}`)
  }
  cronPreview(cron: string, timezone?: string, count = 5) {
    return this.request<{ next: string[] }>('POST', '/api/cron/preview', { cron, timezone: timezone || undefined, count })
  }

  // windows
  windows() { return this.request<Window[]>('GET', '/api/windows') }
  window(id: number) { return this.request<Window>('GET', `/api/windows/${id}`) }
  createWindow(input: WindowInput, dryRun = false) {
    return this.request<Window>('POST', `/api/windows${dryRun ? '?dry_run=true' : ''}`, input)
  }
  updateWindow(id: number, input: WindowInput, dryRun = false) {
    return this.request<Window>('PUT', `/api/windows/${id}${dryRun ? '?dry_run=true' : ''}`, input)
  }
  deleteWindow(id: number) { return this.request<void>('DELETE', `/api/windows/${id}`) }
  /** Without `until` the override lasts until the window's next boundary. */
  setOverride(id: number, desired: Desired, until?: Date, reason?: string) {
    return this.request<Window>('POST', `/api/windows/${id}/override`, {
      desired, until: until?.toISOString(), reason: reason || undefined,
    })
  }
  clearOverride(id: number) { return this.request<Window>('DELETE', `/api/windows/${id}/override`) }
  windowPreview(req: WindowPreviewRequest) {
    return this.request<WindowPreview>('POST', '/api/windows/preview', { ...req, timezone: req.timezone || undefined })
  }

  // bulk
  bulk(action: Action, targets: BulkTarget[], force = false) {
    return this.request<BulkResponse>('POST', `/api/bulk${force ? '?force=true' : ''}`, { action, targets })
  }

  // export / import (admin)
  exportDocument(secrets = false) { return this.request<unknown>('GET', `/api/export${secrets ? '?secrets=true' : ''}`) }
  importDocument(document: unknown, mode: ImportMode, dryRun: boolean) {
    return this.request<ImportResult>('POST', `/api/import?dry_run=${dryRun}`, { document, mode })
  }

  // audit
  audit(q: AuditQuery = {}) {
    return this.request<AuditPage>('GET', `/api/audit${qs({ ...q })}`)
  }

  // health (public)
  health() { return this.request<Health>('GET', '/healthz') }
}

export const api = new Client()

/** A human sentence for any thrown value. */
export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) return e.message
  if (e instanceof Error) return e.message
  return String(e)
}

/** "14 min 3 s" for a Retry-After wait. */
export function formatWait(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds))
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  const r = s % 60
  if (m < 60) return r ? `${m} min ${r} s` : `${m} min`
  const h = Math.floor(m / 60)
  const rm = m % 60
  return rm ? `${h} h ${rm} min` : `${h} h`
}
