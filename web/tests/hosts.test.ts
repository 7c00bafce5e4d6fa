import { describe, expect, it, vi } from 'vitest'
import { Client } from '../src/lib/api'
import { targetKey } from '../src/lib/bulk'
import {
  actionPath, actionsForType, filterByHost, formFromHost, groupByHost, hostFilterOptions, hostInput, hostKey, hostOf,
  hostPatch, hostQuery, isMultiHost, isReadOnlyHost, newHostForm, onHost, replicasText, serviceActions, servicesByStack,
  stackRoute, targetNames, targetTypesFor, validateHostForm,
} from '../src/lib/hosts'
import type { HostView, Service } from '../src/lib/types'

const host = (name: string, over: Partial<HostView> = {}): HostView => ({
  name, url: `tcp://${name}:2376`, group: null, source: 'api', tls: false, status: 'ok', version: '27.0', containers: 1,
  swarm_manager: false, error: null, ...over,
})
const HOSTS = [host('nas', { group: 'home' }), host('local', { source: 'env', url: 'unix:///var/run/docker.sock' }),
  host('pi', { group: 'home', status: 'unreachable' }), host('cloud')]
const svc = (name: string, over: Partial<Service> = {}): Service => ({
  host: 'swarm', id: `id-${name}`, name, stack: null, mode: 'replicated', replicas: 2, desired_replicas: 2, saved_replicas: null, ...over,
})

describe('target identity is (host, name)', () => {
  it('defaults a missing host to local', () => {
    expect(hostOf({})).toBe('local')
    expect(hostOf({ host: null })).toBe('local')
    expect(hostOf({ host: 'nas' })).toBe('nas')
    expect(hostKey(undefined, 'web')).toBe(hostKey('local', 'web'))
    expect(hostKey('nas', 'web')).not.toBe(hostKey('local', 'web'))
  })

  it('bulk keys tell two hosts\' stacks of the same name apart', () => {
    expect(targetKey({ target_type: 'stack', target_id: 'web', host: 'nas' }))
      .not.toBe(targetKey({ target_type: 'stack', target_id: 'web' }))
  })

  it('links to a stack carry ?host= only off local', () => {
    expect(stackRoute('web')).toEqual({ name: 'stack', params: { name: 'web' }, query: {} })
    expect(stackRoute('web', 'local')).toEqual({ name: 'stack', params: { name: 'web' }, query: {} })
    expect(stackRoute('web', 'nas').query).toEqual({ host: 'nas' })
  })

  it('names a host only when it is not local', () => {
    expect(onHost('nas')).toBe(' on nas')
    expect(onHost('local')).toBe('')
    expect(onHost(undefined)).toBe('')
  })

  it('is single-host with only local (or nothing from an older server)', () => {
    expect(isMultiHost([])).toBe(false)
    expect(isMultiHost([host('local')])).toBe(false)
    expect(isMultiHost([host('nas')])).toBe(true)
    expect(isMultiHost(HOSTS)).toBe(true)
  })
})

describe('host filter and grouping', () => {
  const stacks = [
    { name: 'web', host: 'nas' }, { name: 'web' }, { name: 'db', host: 'pi' }, { name: 'x', host: 'cloud' }, { name: 'y', host: 'gone' },
  ]

  it('offers each host and each group', () => {
    const o = hostFilterOptions(HOSTS)
    expect(o.hosts.map((x) => x.value)).toEqual(['host:nas', 'host:local', 'host:pi', 'host:cloud'])
    expect(o.groups).toEqual([{ value: 'group:home', label: 'Group home' }])
  })

  it('filters by host and by group', () => {
    expect(filterByHost(stacks, '', HOSTS)).toHaveLength(5)
    expect(filterByHost(stacks, 'host:local', HOSTS)).toEqual([{ name: 'web' }])
    expect(filterByHost(stacks, 'group:home', HOSTS).map((s) => s.host)).toEqual(['nas', 'pi'])
    expect(filterByHost(stacks, 'group:nope', HOSTS)).toEqual([])
  })

  it('groups by host, local first, then by name, then hosts only the items name', () => {
    const g = groupByHost(stacks, HOSTS)
    expect(g.map((x) => x.host)).toEqual(['local', 'cloud', 'nas', 'pi', 'gone'])
    expect(g[0]!.items).toEqual([{ name: 'web' }])
    expect(g.find((x) => x.host === 'gone')!.view).toBeUndefined()
    expect(g.find((x) => x.host === 'pi')!.view!.status).toBe('unreachable')
  })

  it('keeps an empty group only for a host that is not ok', () => {
    const one: { name: string; host?: string }[] = [{ name: 'web' }]
    const g = groupByHost(one, HOSTS)
    expect(g.map((x) => x.host)).toEqual(['local', 'pi'])
    expect(groupByHost(one, HOSTS, 'group:home').map((x) => x.host)).toEqual(['pi'])
  })
})

describe('target types and actions', () => {
  it('offers Swarm target types only on a manager', () => {
    expect(targetTypesFor(host('a'))).toEqual(['stack', 'container'])
    expect(targetTypesFor(host('a', { swarm_manager: true }))).toEqual(['stack', 'container', 'service', 'swarm_stack'])
    expect(targetTypesFor(undefined)).toEqual(['stack', 'container'])
  })

  it('never offers pause or unpause for services or Swarm stacks', () => {
    expect(actionsForType('stack')).toContain('pause')
    expect(actionsForType('container')).toContain('unpause')
    for (const t of ['service', 'swarm_stack'] as const) expect(actionsForType(t)).toEqual(['start', 'stop', 'restart'])
  })

  it('gives a global service no stop, a stopped one a start', () => {
    expect(serviceActions(svc('a', { mode: 'global' }))).not.toContain('stop')
    expect(serviceActions(svc('a'))).toEqual(['stop', 'restart'])
    expect(serviceActions(svc('a', { desired_replicas: 0, replicas: 0 }))).toEqual(['start'])
  })

  it('shows replicas, and what a start brings back', () => {
    expect(replicasText(svc('a', { replicas: 1, desired_replicas: 3 }))).toBe('1/3')
    expect(replicasText(svc('a', { replicas: 0, desired_replicas: 0, saved_replicas: 3 }))).toBe('stopped (will start 3)')
    expect(replicasText(svc('a', { replicas: 0, desired_replicas: 0 }))).toBe('stopped')
    expect(replicasText(svc('a', { mode: 'global', replicas: 2, desired_replicas: 2 }))).toBe('2/2 (global)')
  })

  it('groups services by Swarm stack, loose ones last', () => {
    const g = servicesByStack([svc('z'), svc('b_api', { stack: 'b' }), svc('a_web', { stack: 'a' }), svc('a_db', { stack: 'a' })])
    expect(g.map((x) => x.stack)).toEqual(['a', 'b', null])
    expect(g[0]!.services.map((s) => s.name)).toEqual(['a_db', 'a_web'])
  })

  it('lists the targets of the chosen host only', () => {
    const data = {
      stacks: [{ name: 'web' }, { name: 'web2', host: 'nas' }],
      containers: [{ name: 'c1', host: 'nas' }],
      services: [svc('s1', { host: 'nas', stack: 'st' }), svc('s2', { host: 'nas', stack: 'st' }), svc('s3', { host: 'other' })],
      hosts: [{ group: 'lab' }, { group: null }, { group: 'edge' }, { group: 'lab' }],
    }
    expect(targetNames('stack', 'local', data)).toEqual(['web'])
    expect(targetNames('stack', 'nas', data)).toEqual(['web2'])
    expect(targetNames('container', 'nas', data)).toEqual(['c1'])
    expect(targetNames('service', 'nas', data)).toEqual(['s1', 's2'])
    expect(targetNames('swarm_stack', 'nas', data)).toEqual(['st'])
    // a group spans hosts: every group, once, sorted
    expect(targetNames('group', '*', data)).toEqual(['edge', 'lab'])
  })
})

describe('URLs with ?host=', () => {
  it('builds action paths per target type, encoding both parts', () => {
    expect(actionPath('stack', 'web', 'stop')).toBe('/api/stacks/web/stop')
    expect(actionPath('stack', 'web', 'stop', 'nas')).toBe('/api/stacks/web/stop?host=nas')
    expect(actionPath('container', 'a b', 'start', 'x&y')).toBe('/api/containers/a%20b/start?host=x%26y')
    expect(actionPath('service', 'app_web', 'restart', 'sw')).toBe('/api/services/app_web/restart?host=sw')
    expect(actionPath('swarm_stack', 'app', 'stop', 'sw')).toBe('/api/swarm-stacks/app/stop?host=sw')
    expect(hostQuery(undefined)).toBe('')
  })

  it('the client passes the host on fetches and actions', async () => {
    const fetch = vi.fn(async () => new Response('[]', { status: 200 }))
    const c = new Client({ fetch })
    await c.stacks()
    await c.stacks('nas')
    await c.stack('web', 'nas')
    await c.services('sw 1')
    await c.act('stack', 'web', 'stop', 'nas')
    await c.deleteHost('nas').catch(() => {})
    expect(fetch.mock.calls.map((x) => (x as unknown[])[0])).toEqual([
      '/api/stacks', '/api/stacks?host=nas', '/api/stacks/web?host=nas', '/api/services?host=sw%201',
      '/api/stacks/web/stop?host=nas', '/api/hosts/nas',
    ])
  })
})

describe('host form', () => {
  it('validates name, URL and complete TLS material', () => {
    const f = { ...newHostForm(), name: 'Bad_Name', url: 'http://x' }
    const e = validateHostForm(f)
    expect(e.name).toBeTruthy()
    expect(e.url).toBeTruthy()
    expect(validateHostForm({ ...f, name: 'nas', url: 'tcp://10.0.0.2:2376' })).toEqual({})
    expect(validateHostForm({ ...f, name: 'nas', url: 'unix:///var/run/docker.sock' })).toEqual({})
    expect(validateHostForm({ ...f, name: 'nas', url: 'tcp://10.0.0.2' }).url).toBeTruthy()
    expect(validateHostForm({ ...f, name: 'nas', url: 'tcp://h:1', group: 'Home Lab' }).group).toBeTruthy()
    expect(validateHostForm({ ...f, name: 'nas', url: 'unix:///s', tlsMode: 'set', ca: 'a', cert: 'b', key: 'c' }).tls).toMatch(/tcp/)
    expect(validateHostForm({ ...f, name: 'nas', url: 'tcp://h:1', tlsMode: 'set', ca: 'x' }).tls).toMatch(/client certificate, client key/)
    // the name is fixed when editing
    expect(validateHostForm({ ...f, url: 'tcp://h:1' }, true)).toEqual({})
  })

  it('creates with group and TLS only when given', () => {
    expect(hostInput({ ...newHostForm(), name: ' nas ', url: 'tcp://h:1 ' })).toEqual({ name: 'nas', url: 'tcp://h:1' })
    const withTls = hostInput({ ...newHostForm(), name: 'n', url: 'tcp://h:1', group: 'home', tlsMode: 'set', ca: 'A', cert: 'B', key: 'C' })
    expect(withTls).toEqual({ name: 'n', url: 'tcp://h:1', group: 'home', tls: { ca: 'A\n', cert: 'B\n', key: 'C\n' } })
  })

  it('edits send only changes; stored TLS is kept, replaced or removed, never shown', () => {
    const h = host('nas', { tls: true, group: 'home' })
    const f = formFromHost(h)
    expect(f.tlsMode).toBe('keep')
    expect([f.ca, f.cert, f.key]).toEqual(['', '', ''])
    expect(hostPatch(f, h)).toEqual({})
    expect(hostPatch({ ...f, group: '' }, h)).toEqual({ group: null })
    expect(hostPatch({ ...f, url: 'tcp://new:1' }, h)).toEqual({ url: 'tcp://new:1' })
    expect(hostPatch({ ...f, tlsMode: 'remove' }, h)).toEqual({ tls: null })
    expect(hostPatch({ ...f, tlsMode: 'set', ca: 'a', cert: 'b', key: 'c' }, h).tls).toEqual({ ca: 'a\n', cert: 'b\n', key: 'c\n' })
    expect(hostPatch(formFromHost(host('x')), host('x'))).toEqual({})
  })

  it('treats env hosts and local as read-only', () => {
    expect(isReadOnlyHost(host('a', { source: 'env' }))).toBe(true)
    expect(isReadOnlyHost(host('local', { source: 'api' }))).toBe(true)
    expect(isReadOnlyHost(host('a'))).toBe(false)
  })
})
