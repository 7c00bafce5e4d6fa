// Live events keep (host, name) apart: two hosts may each have a stack `web`.
import { beforeEach, describe, expect, it } from 'vitest'
import { applyEvent, multiHost, stackByName, state } from '../src/lib/store'
import type { Container, HostView, Stack } from '../src/lib/types'

const stack = (name: string, host: string, status: Stack['status'] = 'running'): Stack =>
  ({ name, host, status, containers: [], services: [] })
const container = (id: string, name: string, host: string, st: Container['state'] = 'running'): Container =>
  ({ id, name, host, image: 'busybox', state: st, status: '', labels: {}, stack: null, service: null, created: '' })
const hostView = (name: string, over: Partial<HostView> = {}): HostView => ({
  name, url: 'tcp://h:1', group: null, source: 'api', tls: false, status: 'ok', version: null, containers: 0,
  swarm_manager: false, error: null, ...over,
})

beforeEach(() => {
  state.stacks = [stack('web', 'local'), stack('web', 'nas')]
  state.containers = [container('a', 'web-1', 'local'), container('b', 'web-1', 'nas')]
  state.hosts = [hostView('local', { source: 'env' }), hostView('nas')]
  state.services = []
  state.docker = 'ok'
})

describe('live events by (host, name)', () => {
  it('a stack event changes that host\'s stack only', () => {
    applyEvent('stack', { host: 'nas', name: 'web', stack: stack('web', 'nas', 'stopped') })
    expect(stackByName('web', 'nas')!.status).toBe('stopped')
    expect(stackByName('web')!.status).toBe('running')
    applyEvent('stack', { host: 'nas', name: 'web', stack: null })
    expect(state.stacks.map((s) => s.host)).toEqual(['local'])
  })

  it('a container event matches by host as well as id or name', () => {
    applyEvent('container', { host: 'local', id: 'a', name: 'web-1', container: container('a', 'web-1', 'local', 'exited') })
    expect(state.containers.map((c) => `${c.host}:${c.state}`).sort()).toEqual(['local:exited', 'nas:running'])
  })

  it('an unreachable host is marked without the local banner; local going down raises it', () => {
    applyEvent('docker', { host: 'nas', status: 'unreachable' })
    expect(state.hosts.find((h) => h.name === 'nas')!.status).toBe('unreachable')
    expect(state.docker).toBe('ok')
    applyEvent('docker', { host: 'local', status: 'unreachable' })
    expect(state.docker).toBe('unreachable')
  })

  it('a removed host takes its targets along, and one host left names no host', () => {
    expect(multiHost.value).toBe(true)
    applyEvent('host', { name: 'nas', host: null })
    expect(state.hosts.map((h) => h.name)).toEqual(['local'])
    expect(state.stacks.map((s) => s.host)).toEqual(['local'])
    expect(state.containers.map((c) => c.host)).toEqual(['local'])
    expect(multiHost.value).toBe(false)
  })
})
