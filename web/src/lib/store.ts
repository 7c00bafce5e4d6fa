// The app's shared state: who is signed in, the Docker view, schedules and
// the engine's health, kept current by the /api/events stream.
import { computed, reactive } from 'vue'
import { api, errorMessage } from './api'
import { LiveKind, applyLive } from './settled'
import { toast } from './toast'
import { LOCAL, hostOf, isMultiHost } from './hosts'
import type { Container, HostView, Schedule, ScheduleRunEvent, SequenceStepEvent, Service, Stack, TargetType, User, Window } from './types'

export interface State {
  user: User | null
  authChecked: boolean
  stacks: Stack[]
  containers: Container[]
  schedules: Schedule[]
  windows: Window[]
  /** From /api/hosts; empty on a server without hosts (then everything is `local`). */
  hosts: HostView[]
  /** Swarm services of every reachable manager host. */
  services: Service[]
  loaded: { docker: boolean; schedules: boolean; windows: boolean; hosts: boolean }
  dockerError: string | null
  docker: 'ok' | 'unreachable' | 'unknown'
  live: 'connecting' | 'open' | 'closed'
  /** Bumped whenever schedules change or a run happens: views re-fetch derived data. */
  scheduleVersion: number
  /** Bumped whenever windows change. */
  windowVersion: number
  auditVersion: number
  sessionExpired: boolean
  /** The steps finished so far of each sequence under way, by schedule id (live). */
  sequenceSteps: Record<number, SequenceStepEvent[]>
}

export const state = reactive<State>({
  user: null,
  authChecked: false,
  stacks: [],
  containers: [],
  schedules: [],
  windows: [],
  hosts: [],
  services: [],
  loaded: { docker: false, schedules: false, windows: false, hosts: false },
  dockerError: null,
  docker: 'unknown',
  live: 'closed',
  scheduleVersion: 0,
  windowVersion: 0,
  auditVersion: 0,
  sessionExpired: false,
  sequenceSteps: {},
})

export const can = reactive({
  act: computed(() => state.user?.role === 'operator' || state.user?.role === 'admin'),
  admin: computed(() => state.user?.role === 'admin'),
})

/** Whether hosts are named anywhere: with only `local` the UI looks as it did before hosts. */
export const multiHost = computed(() => isMultiHost(state.hosts))
export function hostView(name: string | null | undefined): HostView | undefined {
  const n = name || LOCAL
  return state.hosts.find((h) => h.name === n)
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' })
// by name, then host: two hosts may each have a `web`
const byName = <T extends { name: string; host?: string | null }>(a: T, b: T) =>
  collator.compare(a.name, b.name) || collator.compare(hostOf(a), hostOf(b))
const byId = (a: { id: number }, b: { id: number }) => a.id - b.id
const sameTarget = (host: unknown, name: unknown) => (x: { name: string; host?: string | null }) =>
  x.name === name && hostOf(x) === ((host as string | undefined) || LOCAL)

// Each kind of live state: events that arrive during a load of it are
// applied again on top of the load's answer.
const live = {
  docker: new LiveKind(), schedules: new LiveKind(), health: new LiveKind(),
  windows: new LiveKind(), hosts: new LiveKind(), services: new LiveKind(),
}

export async function loadDocker(): Promise<void> {
  try {
    await live.docker.load(() => Promise.all([api.stacks(), api.containers()]), ([stacks, containers]) => {
      state.stacks = stacks.sort(byName)
      state.containers = containers.sort(byName)
    })
    state.dockerError = null
    state.loaded.docker = true
  } catch (e) {
    state.dockerError = errorMessage(e)
    state.loaded.docker = true
  }
}

export async function loadHosts(): Promise<void> {
  try {
    await live.hosts.load(() => api.hosts(), (hosts) => { state.hosts = hosts.sort(byName) })
    state.loaded.hosts = true
  } catch (e) {
    // keep what we had (the UI and the API ship together: no "older server" case)
    toast('error', 'Could not load hosts', [errorMessage(e)])
  }
  void loadServices()
}

/** Services of each reachable Swarm manager; a host that fails keeps what it had. */
export async function loadServices(): Promise<void> {
  const managers = state.hosts.filter((h) => h.swarm_manager && h.status === 'ok').map((h) => h.name)
  await live.services.load(() => Promise.all(managers.map((h) =>
    api.services(h).then((list) => ({ h, list }), () => ({ h, list: null as Service[] | null })))), (got) => {
    const fresh = new Set(got.filter((g) => g.list).map((g) => g.h))
    state.services = [
      ...state.services.filter((s) => managers.includes(s.host) && !fresh.has(s.host)),
      ...got.flatMap((g) => g.list ?? []),
    ].sort(byName)
  })
}

export async function loadSchedules(): Promise<void> {
  try {
    await live.schedules.load(() => api.schedules(), (list) => { state.schedules = list.sort(byId) })
    state.loaded.schedules = true
    state.scheduleVersion++
  } catch (e) {
    toast('error', 'Could not load schedules', [errorMessage(e)])
  }
}

export async function loadWindows(): Promise<void> {
  try {
    await live.windows.load(() => api.windows(), (list) => { state.windows = list.sort(byId) })
    state.loaded.windows = true
    state.windowVersion++
  } catch (e) {
    toast('error', 'Could not load windows', [errorMessage(e)])
  }
}

/** Applies a window the server just answered with (its live event may come later). */
export function putWindow(w: Window): void {
  applyLive([live.windows], () => upsert(state.windows, (x) => x.id === w.id, w, byId))
  state.windowVersion++
}
export function dropWindow(id: number): void {
  applyLive([live.windows], () => upsert<Window>(state.windows, (x) => x.id === id, null, byId))
  state.windowVersion++
}

/** The enabled window of a target, if any (else the first disabled one). */
export function windowFor(type: TargetType, id: string, host = LOCAL): Window | undefined {
  const all = state.windows.filter((w) => w.target_type === type && w.target_id === id && (w.host ?? 'local') === host)
  return all.find((w) => w.enabled) ?? all[0]
}

export async function loadHealth(): Promise<void> {
  try {
    // Still connecting at start-up: no banner until the first attempt is over.
    await live.health.load(() => api.health(), ({ docker }) => { state.docker = docker === 'connecting' ? 'unknown' : docker })
  } catch {
    // the server itself is away: the live indicator shows that
  }
}

export async function refreshAll(): Promise<void> {
  await Promise.all([loadDocker(), loadSchedules(), loadWindows(), loadHealth(), loadHosts()])
  state.auditVersion++
}

export function stackByName(name: string, host = LOCAL): Stack | undefined {
  return state.stacks.find(sameTarget(host, name))
}

export function containerByName(name: string, host = LOCAL): Container | undefined {
  return state.containers.find(sameTarget(host, name))
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
      applyLive([live.docker], () => upsert(state.stacks, sameTarget(d.host, d.name), (d.stack as Stack | null) ?? null, byName))
      break
    case 'container': {
      const c = (d.container as Container | null) ?? null
      const h = (d.host as string | undefined) || LOCAL
      applyLive([live.docker], () =>
        upsert(state.containers, (x) => hostOf(x) === h && (x.id === d.id || (c !== null && x.name === c.name)), c, byName))
      break
    }
    case 'docker': {
      // per host; the banner is about `local` (other hosts show their state where their targets are)
      const h = (d.host as string | undefined) || LOCAL
      const status = d.status === 'ok' ? 'ok' : d.status === 'connecting' ? 'connecting' : 'unreachable'
      const was = hostView(h)?.status ?? (h === LOCAL ? state.docker : undefined)
      applyLive([live.health, live.hosts], () => {
        const view = hostView(h)
        if (view) view.status = status
        if (h === LOCAL) state.docker = status === 'ok' ? 'ok' : 'unreachable'
      })
      if (was !== 'ok' && status === 'ok') { void loadDocker(); void loadHosts() }
      break
    }
    case 'host': {
      const v = (d.host as HostView | null) ?? null
      const before = hostView(d.name as string)
      applyLive([live.hosts], () => upsert(state.hosts, (x) => x.name === d.name, v, byName))
      if (!v) {
        // a removed host takes its targets with it
        applyLive([live.docker], () => {
          state.stacks = state.stacks.filter((s) => hostOf(s) !== d.name)
          state.containers = state.containers.filter((c) => hostOf(c) !== d.name)
        })
        applyLive([live.services], () => { state.services = state.services.filter((s) => s.host !== d.name) })
      } else if (v.swarm_manager !== before?.swarm_manager || (v.status === 'ok') !== (before?.status === 'ok')) {
        void loadServices()
      }
      break
    }
    case 'service':
      applyLive([live.services], () => upsert(state.services, sameTarget(d.host, d.name), (d.service as Service | null) ?? null, byName))
      break
    case 'schedule':
      applyLive([live.schedules], () => upsert(state.schedules, (s) => s.id === d.id, (d.schedule as Schedule | null) ?? null, byId))
      state.scheduleVersion++
      break
    case 'window':
      applyLive([live.windows], () => upsert(state.windows, (w) => w.id === d.id, (d.window as Window | null) ?? null, byId))
      state.windowVersion++
      break
    case 'schedule_run': {
      const r = d as unknown as ScheduleRunEvent
      state.auditVersion++
      const on = r.host && r.host !== LOCAL ? ` on ${r.host}` : ''
      if (!r.ok) toast('error', `Scheduled ${r.action} of ${r.target_type} ${r.target_id}${on} failed`, [r.message])
      break
    }
    case 'sequence_step': {
      const e = d as unknown as SequenceStepEvent
      // a new run of the sequence starts a new list
      const before = e.step === 1 ? [] : (state.sequenceSteps[e.schedule_id] ?? [])
      state.sequenceSteps[e.schedule_id] = [...before, e]
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
const EVENTS = ['container', 'stack', 'docker', 'host', 'service', 'schedule', 'schedule_run', 'sequence_step', 'window', 'resync']

export function startLive(): void {
  stopLive()
  state.live = 'connecting'
  const es = new EventSource('/api/events', { withCredentials: true })
  source = es
  es.addEventListener('open', () => {
    if (source !== es) return
    state.live = 'open'
    retryDelay = 1000
    // (Re)connected: anything may have changed while we were away. Even the
    // first open: the sign-in's load may have been answered before the stream
    // was subscribed, and a change between the two would be missed. (The
    // lists answer 304 when nothing changed.)
    void refreshAll()
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
  state.hosts = []
  state.services = []
  state.loaded.hosts = false
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
  state.sessionExpired = false
  // Until the required two-factor set-up is done the server refuses all but
  // the account routes: nothing to load or watch yet.
  if (user.totp_required_setup) return
  // The login answer has no server defaults; /api/auth/me does.
  if (!user.default_timezone) {
    void api.me().then((me) => {
      if (state.user?.id === me.id) state.user.default_timezone = me.default_timezone
    }).catch(() => {})
  }
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
