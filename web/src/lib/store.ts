// The app's shared state: who is signed in, the Docker view, schedules and
// the engine's health, kept current by the /api/events stream.
import { computed, reactive } from 'vue'
import { api, errorMessage } from './api'
import { fetchSettled } from './settled'
import { toast } from './toast'
import type { Container, Schedule, ScheduleRunEvent, Stack, User, Window } from './types'

export interface State {
  user: User | null
  authChecked: boolean
  stacks: Stack[]
  containers: Container[]
  schedules: Schedule[]
  windows: Window[]
  loaded: { docker: boolean; schedules: boolean; windows: boolean }
  dockerError: string | null
  docker: 'ok' | 'unreachable' | 'unknown'
  live: 'connecting' | 'open' | 'closed'
  /** Bumped whenever schedules change or a run happens: views re-fetch derived data. */
  scheduleVersion: number
  /** Bumped whenever windows change. */
  windowVersion: number
  auditVersion: number
  sessionExpired: boolean
}

export const state = reactive<State>({
  user: null,
  authChecked: false,
  stacks: [],
  containers: [],
  schedules: [],
  windows: [],
  loaded: { docker: false, schedules: false, windows: false },
  dockerError: null,
  docker: 'unknown',
  live: 'closed',
  scheduleVersion: 0,
  windowVersion: 0,
  auditVersion: 0,
  sessionExpired: false,
})

export const can = reactive({
  act: computed(() => state.user?.role === 'operator' || state.user?.role === 'admin'),
  admin: computed(() => state.user?.role === 'admin'),
})

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' })
const byName = <T extends { name: string }>(a: T, b: T) => collator.compare(a.name, b.name)

// Live events seen per kind, so that a fetch that raced one is repeated.
const seen = { docker: 0, schedules: 0, health: 0, windows: 0 }

export async function loadDocker(): Promise<void> {
  try {
    const [stacks, containers] = await fetchSettled(() => seen.docker, () => Promise.all([api.stacks(), api.containers()]))
    state.stacks = stacks.sort(byName)
    state.containers = containers.sort(byName)
    state.dockerError = null
    state.loaded.docker = true
  } catch (e) {
    state.dockerError = errorMessage(e)
    state.loaded.docker = true
  }
}

export async function loadSchedules(): Promise<void> {
  try {
    state.schedules = (await fetchSettled(() => seen.schedules, () => api.schedules())).sort((a, b) => a.id - b.id)
    state.loaded.schedules = true
    state.scheduleVersion++
  } catch (e) {
    toast('error', 'Could not load schedules', [errorMessage(e)])
  }
}

export async function loadWindows(): Promise<void> {
  try {
    state.windows = (await fetchSettled(() => seen.windows, () => api.windows())).sort((a, b) => a.id - b.id)
    state.loaded.windows = true
    state.windowVersion++
  } catch (e) {
    toast('error', 'Could not load windows', [errorMessage(e)])
  }
}

/** Applies a window the server just answered with (its live event may come later). */
export function putWindow(w: Window): void {
  upsert(state.windows, (x) => x.id === w.id, w, (a, b) => a.id - b.id)
  state.windowVersion++
}
export function dropWindow(id: number): void {
  upsert<Window>(state.windows, (x) => x.id === id, null, (a, b) => a.id - b.id)
  state.windowVersion++
}

/** The enabled window of a target, if any (else the first disabled one). */
export function windowFor(type: 'stack' | 'container', id: string, host = 'local'): Window | undefined {
  const all = state.windows.filter((w) => w.target_type === type && w.target_id === id && (w.host ?? 'local') === host)
  return all.find((w) => w.enabled) ?? all[0]
}

export async function loadHealth(): Promise<void> {
  try {
    const docker = (await fetchSettled(() => seen.health, () => api.health())).docker
    // Still connecting at start-up: no banner until the first attempt is over.
    state.docker = docker === 'connecting' ? 'unknown' : docker
  } catch {
    // the server itself is away: the live indicator shows that
  }
}

let skipOpenRefresh = false
export async function refreshAll(): Promise<void> {
  await Promise.all([loadDocker(), loadSchedules(), loadWindows(), loadHealth()])
  state.auditVersion++
}

export function stackByName(name: string): Stack | undefined {
  return state.stacks.find((s) => s.name === name)
}

function upsert<T>(list: T[], match: (x: T) => boolean, item: T | null, sort: (a: T, b: T) => number): void {
  const i = list.findIndex(match)
  if (item === null) {
    if (i >= 0) list.splice(i, 1)
  } else if (i >= 0) {
    list[i] = item
  } else {
    list.push(item)
    list.sort(sort)
  }
}

export function applyEvent(name: string, data: unknown): void {
  const d = data as Record<string, unknown>
  switch (name) {
    case 'stack':
      seen.docker++
      upsert(state.stacks, (s) => s.name === d.name, (d.stack as Stack | null) ?? null, byName)
      break
    case 'container': {
      seen.docker++
      const c = (d.container as Container | null) ?? null
      upsert(state.containers, (x) => x.id === d.id || (c !== null && x.name === c.name), c, byName)
      break
    }
    case 'docker': {
      seen.health++
      const was = state.docker
      state.docker = d.status === 'ok' ? 'ok' : 'unreachable'
      if (was === 'unreachable' && state.docker === 'ok') void loadDocker()
      break
    }
    case 'schedule':
      seen.schedules++
      upsert(state.schedules, (s) => s.id === d.id, (d.schedule as Schedule | null) ?? null, (a, b) => a.id - b.id)
      state.scheduleVersion++
      break
    case 'window':
      seen.windows++
      upsert(state.windows, (w) => w.id === d.id, (d.window as Window | null) ?? null, (a, b) => a.id - b.id)
      state.windowVersion++
      break
    case 'schedule_run': {
      const r = d as unknown as ScheduleRunEvent
      state.auditVersion++
      if (!r.ok) toast('error', `Scheduled ${r.action} of ${r.target_type} ${r.target_id} failed`, [r.message])
      break
    }
    case 'resync':
      void refreshAll()
      break
  }
}

// ---- live connection -------------------------------------------------------

let source: EventSource | null = null
let retryTimer: ReturnType<typeof setTimeout> | null = null
let retryDelay = 1000
const EVENTS = ['container', 'stack', 'docker', 'schedule', 'schedule_run', 'window', 'resync']

export function startLive(): void {
  stopLive()
  state.live = 'connecting'
  const es = new EventSource('/api/events', { withCredentials: true })
  source = es
  es.addEventListener('open', () => {
    if (source !== es) return
    state.live = 'open'
    retryDelay = 1000
    // (Re)connected: anything may have changed while we were away. The very
    // first open follows the initial load, which just happened.
    if (skipOpenRefresh) skipOpenRefresh = false
    else void refreshAll()
  })
  es.addEventListener('error', () => {
    if (source !== es) return
    state.live = 'connecting'
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (e.g. a proxy error page): retry by hand, and find
      // out whether the session is still valid.
      es.close()
      source = null
      state.live = 'closed'
      retryTimer = setTimeout(() => {
        retryTimer = null
        void api.me().then(
          () => { if (state.user) startLive() },
          (e: { status?: number }) => {
            if (e.status === 401) sessionLost()
            else if (state.user) { retryDelay = Math.min(retryDelay * 2, 15_000); startLive() }
          },
        )
      }, retryDelay)
    }
  })
  for (const name of EVENTS) {
    es.addEventListener(name, (ev) => {
      if (source !== es) return
      let data: unknown = {}
      try {
        data = JSON.parse((ev as MessageEvent<string>).data || '{}')
      } catch {
        return
      }
      applyEvent(name, data)
    })
  }
}

export function stopLive(): void {
  if (retryTimer) clearTimeout(retryTimer)
  retryTimer = null
  source?.close()
  source = null
  state.live = 'closed'
}

// ---- session ---------------------------------------------------------------

let onSessionLost: (() => void) | null = null
export function setSessionLostHandler(fn: () => void): void {
  onSessionLost = fn
}

// Docker's status text ("Up 5 minutes") is a snapshot: refresh it now and then.
// (Containers carry no start time to compute uptime from.)
let statusTimer: ReturnType<typeof setInterval> | null = null
function startStatusRefresh(): void {
  if (statusTimer) clearInterval(statusTimer)
  statusTimer = setInterval(() => {
    if (state.user && document.visibilityState === 'visible') void loadDocker()
  }, 60_000)
}

export function clearSession(): void {
  if (statusTimer) clearInterval(statusTimer)
  statusTimer = null
  stopLive()
  state.user = null
  state.stacks = []
  state.containers = []
  state.schedules = []
  state.windows = []
  state.loaded.docker = false
  state.loaded.schedules = false
  state.loaded.windows = false
}

export function sessionLost(): void {
  if (!state.user) return
  clearSession()
  state.sessionExpired = true
  onSessionLost?.()
}

export function signedIn(user: User): void {
  state.user = user
  // The login answer has no server defaults; /api/auth/me does.
  if (!user.default_timezone) {
    void api.me().then((me) => {
      if (state.user?.id === me.id) state.user.default_timezone = me.default_timezone
    }).catch(() => {})
  }
  state.sessionExpired = false
  skipOpenRefresh = true
  startLive()
  startStatusRefresh()
  void refreshAll()
}

export async function checkAuth(): Promise<void> {
  try {
    const me = await api.me()
    signedIn(me)
  } catch {
    state.user = null
  } finally {
    state.authChecked = true
  }
}

api.onUnauthorized = () => sessionLost()
