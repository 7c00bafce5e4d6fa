// Many Docker hosts: a target's identity is (host, name), the host filter
// (all / one host / one group), grouping by host, which actions each target
// type offers, and the Hosts page's form. Pure: no Vue, no fetch.
import type { Action, HostInput, HostPatch, HostStatus, HostView, Service, TargetType, ActionTargetType } from './types'

export const LOCAL = 'local'

/** The host of anything that may carry one; older servers send none: `local`. */
export function hostOf(x: { host?: string | null }): string {
  return x.host || LOCAL
}

/** One key per (host, name): two hosts may each have a stack `web`. */
export function hostKey(host: string | null | undefined, name: string): string {
  return `${host || LOCAL}/${name}`
}

/** " on nas" for labels and messages; nothing for `local`, so single-host wording is unchanged. */
export function onHost(host?: string | null): string {
  return host && host !== LOCAL ? ` on ${host}` : ''
}

/** True when the UI should name hosts at all: with only `local` it looks as it did before hosts. */
export function isMultiHost(hosts: Pick<HostView, 'name'>[]): boolean {
  return hosts.length > 1 || (hosts.length === 1 && hosts[0]!.name !== LOCAL)
}

/** The stack page's route: `?host=` only off `local`, so single-host links stay as they were. */
export function stackRoute(name: string, host?: string | null) {
  const h = host || LOCAL
  return { name: 'stack', params: { name }, query: h === LOCAL ? {} : { host: h } }
}

/** The log page of a container or a stack, `?host=` only off `local`. */
export function logsRoute(kind: 'containers' | 'stacks', name: string, host?: string | null) {
  const h = host || LOCAL
  return { name: 'logs', params: { kind, name }, query: h === LOCAL ? {} : { host: h } }
}

// ---- the host filter --------------------------------------------------------------
// Its value is '' (all hosts), `host:NAME` or `group:NAME`: one select, kept in the URL.

export interface FilterOption {
  value: string
  label: string
}

export function hostFilterOptions(hosts: Pick<HostView, 'name' | 'group'>[]): { hosts: FilterOption[]; groups: FilterOption[] } {
  const groups = [...new Set(hosts.map((h) => h.group).filter((g): g is string => !!g))].sort()
  return {
    hosts: hosts.map((h) => ({ value: `host:${h.name}`, label: h.name })),
    groups: groups.map((g) => ({ value: `group:${g}`, label: `Group ${g}` })),
  }
}

/** The host names a filter value lets through (null: all of them). */
export function hostsInFilter(filter: string, hosts: Pick<HostView, 'name' | 'group'>[]): Set<string> | null {
  if (filter.startsWith('host:')) return new Set([filter.slice(5)])
  if (filter.startsWith('group:')) {
    const g = filter.slice(6)
    return new Set(hosts.filter((h) => h.group === g).map((h) => h.name))
  }
  return null
}

export function filterByHost<T extends { host?: string | null }>(items: T[], filter: string, hosts: Pick<HostView, 'name' | 'group'>[]): T[] {
  const keep = hostsInFilter(filter, hosts)
  return keep ? items.filter((x) => keep.has(hostOf(x))) : items
}

export interface HostGroup<T> {
  host: string
  /** Undefined for a host the list names but /api/hosts does not (yet). */
  view: HostView | undefined
  items: T[]
}

/**
 * Items grouped by host, in the hosts list's order (`local` first), then any
 * host only the items name. A host with nothing to show still gets its group
 * when it is not ok, so that an unreachable host is never silently missing.
 */
export function groupByHost<T extends { host?: string | null }>(items: T[], hosts: HostView[], filter = ''): HostGroup<T>[] {
  const keep = hostsInFilter(filter, hosts)
  const order = [...hosts].sort((a, b) => (a.name === LOCAL ? -1 : b.name === LOCAL ? 1 : a.name.localeCompare(b.name)))
  const groups = new Map<string, HostGroup<T>>()
  for (const h of order) if (!keep || keep.has(h.name)) groups.set(h.name, { host: h.name, view: h, items: [] })
  for (const x of items) {
    const h = hostOf(x)
    if (keep && !keep.has(h)) continue
    let g = groups.get(h)
    if (!g) groups.set(h, (g = { host: h, view: undefined, items: [] }))
    g.items.push(x)
  }
  return [...groups.values()].filter((g) => g.items.length || (g.view && g.view.status !== 'ok'))
}

export const HOST_STATUS_LABEL: Record<HostStatus, string> = { ok: 'ok', unreachable: 'unreachable', connecting: 'connecting' }
/** The badge class: the text says the status too (never colour alone). */
export const HOST_STATUS_CLASS: Record<HostStatus, string> = { ok: 'ok', unreachable: 'fail', connecting: 'warn' }

// ---- target types and their actions ------------------------------------------------

export const SWARM_TYPES: TargetType[] = ['service', 'swarm_stack']
export const isSwarmType = (t: TargetType) => t === 'service' || t === 'swarm_stack'

export const TARGET_TYPE_LABEL: Record<TargetType, string> = {
  stack: 'Stack', container: 'Container', service: 'Swarm service', swarm_stack: 'Swarm stack', group: 'Host group',
  sequence: 'Sequence',
}

/** The host of a group target: it spans the group's hosts. */
export const ALL_HOSTS = '*'

/** The groups hosts are in, sorted. */
export function groupNames(hosts: { group: string | null }[]): string[] {
  return [...new Set(hosts.map((h) => h.group).filter((g): g is string => !!g))].sort()
}

/** The target types a host offers: Swarm ones only on a manager. */
export function targetTypesFor(host: Pick<HostView, 'swarm_manager'> | undefined): TargetType[] {
  return host?.swarm_manager ? ['stack', 'container', 'service', 'swarm_stack'] : ['stack', 'container']
}

/** Every action a target type accepts (Swarm has no paused state). */
export function actionsForType(t: TargetType): Action[] {
  return isSwarmType(t) ? ['start', 'stop', 'restart'] : ['start', 'stop', 'restart', 'pause', 'unpause']
}

/** What a schedule (or a sequence's step) may do to a target: a container may also be run as a job. */
export function scheduleActionsForType(t: TargetType): Action[] {
  return t === 'container' ? [...actionsForType(t), 'run'] : actionsForType(t)
}

/** A service's buttons: a global service runs one task per node and cannot be stopped (409 unsupported). */
export function serviceActions(s: Pick<Service, 'mode' | 'desired_replicas'>): Action[] {
  if (s.mode === 'global') return ['start', 'restart']
  return s.desired_replicas === 0 ? ['start'] : ['stop', 'restart']
}

/** "2/3", or "stopped (will start 3)" after a DockNap stop remembered the count. */
export function replicasText(s: Pick<Service, 'mode' | 'replicas' | 'desired_replicas' | 'saved_replicas'>): string {
  if (s.mode === 'replicated' && s.desired_replicas === 0) {
    return s.saved_replicas ? `stopped (will start ${s.saved_replicas})` : 'stopped'
  }
  return `${s.replicas}/${s.desired_replicas}${s.mode === 'global' ? ' (global)' : ''}`
}

/** Services of one host grouped by their Swarm stack (null: not part of one), stacks first by name. */
export function servicesByStack(services: Service[]): { stack: string | null; services: Service[] }[] {
  const m = new Map<string | null, Service[]>()
  for (const s of [...services].sort((a, b) => a.name.localeCompare(b.name))) {
    const list = m.get(s.stack) ?? []
    list.push(s)
    m.set(s.stack, list)
  }
  return [...m].sort(([a], [b]) => (a === null ? 1 : b === null ? -1 : a.localeCompare(b)))
    .map(([stack, list]) => ({ stack, services: list }))
}

/** The target names a host offers for a type (editors' pickers). */
export function targetNames(
  type: TargetType, host: string,
  data: {
    stacks: { name: string; host?: string }[]; containers: { name: string; host?: string }[]; services: Service[]
    hosts: { group: string | null }[]
  },
): string[] {
  const on = <T extends { host?: string | null }>(xs: T[]) => xs.filter((x) => hostOf(x) === host)
  switch (type) {
    case 'stack': return on(data.stacks).map((s) => s.name)
    case 'container': return on(data.containers).map((c) => c.name)
    case 'service': return on(data.services).map((s) => s.name)
    case 'swarm_stack': return [...new Set(on(data.services).map((s) => s.stack).filter((x): x is string => !!x))].sort()
    case 'group': return groupNames(data.hosts)
    case 'sequence': return []
  }
}

// ---- URLs --------------------------------------------------------------------------

const ROUTE_GROUP: Record<ActionTargetType, string> = {
  stack: 'stacks', container: 'containers', service: 'services', swarm_stack: 'swarm-stacks',
}

/** `?host=NAME` when a host is known; none lets the server default to `local` (and older servers accept it). */
export function hostQuery(host?: string | null): string {
  return host ? `?host=${encodeURIComponent(host)}` : ''
}

/** The action route of a target: `/api/stacks/web/stop?host=nas`. */
export function actionPath(type: ActionTargetType, name: string, action: Action, host?: string | null): string {
  return `/api/${ROUTE_GROUP[type]}/${encodeURIComponent(name)}/${action}${hostQuery(host)}`
}

// ---- the Hosts page's form ------------------------------------------------------------

export const HOST_NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/
export const HOST_URL_RE = /^(unix:\/\/\/\S+|tcp:\/\/[^\s/:]+:\d{1,5})$/

/** `keep` (edit only): leave the stored material; `set`: send new; `none`/`remove`: no TLS. */
export type TlsMode = 'none' | 'set' | 'keep' | 'remove'

export interface HostForm {
  name: string
  url: string
  group: string
  tlsMode: TlsMode
  ca: string
  cert: string
  key: string
}

export function newHostForm(): HostForm {
  return { name: '', url: 'tcp://', group: '', tlsMode: 'none', ca: '', cert: '', key: '' }
}

/** Editing never shows the stored PEMs (the API does not return them): keep them unless told. */
export function formFromHost(h: HostView): HostForm {
  return { name: h.name, url: h.url, group: h.group ?? '', tlsMode: h.tls ? 'keep' : 'none', ca: '', cert: '', key: '' }
}

export type HostErrors = Partial<Record<'name' | 'url' | 'group' | 'tls', string>>

export function validateHostForm(f: HostForm, editing = false): HostErrors {
  const e: HostErrors = {}
  if (!editing && !HOST_NAME_RE.test(f.name.trim())) {
    e.name = 'Lower-case letters, digits and hyphens, starting with a letter or digit (at most 63).'
  }
  if (!HOST_URL_RE.test(f.url.trim())) e.url = 'unix:///path/to/docker.sock or tcp://host:port'
  // groups go into URLs (the host filter) like names do
  if (f.group.trim() && !HOST_NAME_RE.test(f.group.trim())) e.group = 'Lower-case letters, digits and hyphens (at most 63).'
  if (f.tlsMode === 'set' && !f.url.trim().startsWith('tcp://')) e.tls = 'TLS needs a tcp:// URL.'
  else if (f.tlsMode === 'set') {
    const missing = (['ca', 'cert', 'key'] as const).filter((k) => !f[k].trim())
    if (missing.length) e.tls = `Paste all three PEM blocks (missing: ${missing.map((k) => TLS_LABEL[k]).join(', ')}).`
  }
  return e
}

export const TLS_LABEL = { ca: 'CA certificate', cert: 'client certificate', key: 'client key' } as const

const tlsOf = (f: HostForm) => ({ ca: f.ca.trim() + '\n', cert: f.cert.trim() + '\n', key: f.key.trim() + '\n' })

export function hostInput(f: HostForm): HostInput {
  const out: HostInput = { name: f.name.trim(), url: f.url.trim() }
  if (f.group.trim()) out.group = f.group.trim()
  if (f.tlsMode === 'set') out.tls = tlsOf(f)
  return out
}

/** Only what changed; `group: null` clears it, `tls: null` removes the material. */
export function hostPatch(f: HostForm, original: HostView): HostPatch {
  const out: HostPatch = {}
  if (f.url.trim() !== original.url) out.url = f.url.trim()
  const g = f.group.trim() || null
  if (g !== original.group) out.group = g
  if (f.tlsMode === 'set') out.tls = tlsOf(f)
  else if (original.tls && (f.tlsMode === 'remove' || f.tlsMode === 'none')) out.tls = null
  return out
}

/** Env hosts (DOCKNAP_HOSTS, and `local` from DOCKER_HOST) are declared outside DockNap's store. */
export function isReadOnlyHost(h: Pick<HostView, 'name' | 'source'>): boolean {
  return h.source === 'env' || h.name === LOCAL
}
