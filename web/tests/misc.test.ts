import { describe, expect, it } from 'vitest'
import { actionsFor, isDestructive } from '../src/lib/actions'
import { formatWhen, relativeTime } from '../src/lib/format'
import { LiveKind, applyLive } from '../src/lib/settled'
import { describeResult } from '../src/lib/toast'

describe('action results', () => {
  it('summarises a success', () => {
    const d = describeResult({ target_type: 'stack', target_id: 'web', action: 'stop', ok: true, results: [
      { container: 'web-1', ok: true, error: null }, { container: 'web-2', ok: true, error: null }] })
    expect(d).toEqual({ kind: 'ok', title: 'Stopped stack web (2 containers)', lines: [] })
  })

  it('names each failed container', () => {
    const d = describeResult({ target_type: 'stack', target_id: 'web', action: 'start', ok: false, results: [
      { container: 'web-1', ok: true, error: null }, { container: 'web-db', ok: false, error: 'port is already allocated' }] })
    expect(d.kind).toBe('error')
    expect(d.title).toBe('Start stack web: 1 of 2 failed')
    expect(d.lines).toEqual(['web-db: port is already allocated'])
  })
})

describe('actions offered', () => {
  it('depends on the state', () => {
    expect(actionsFor('running')).toEqual(['stop', 'restart', 'pause'])
    expect(actionsFor('exited')).toEqual(['start'])
    expect(actionsFor('paused')).toEqual(['unpause', 'stop'])
    expect(actionsFor('partial')).toHaveLength(5)
    expect(isDestructive('stop')).toBe(true)
    expect(isDestructive('restart')).toBe(false)
  })
})

describe('relativeTime', () => {
  const now = Date.parse('2026-01-01T12:00:00Z')
  it('reads naturally', () => {
    expect(relativeTime('2026-01-01T12:00:10Z', now)).toBe('now')
    expect(relativeTime('2026-01-01T12:05:00Z', now)).toBe('in 5 min')
    expect(relativeTime('2026-01-01T09:00:00Z', now)).toBe('3 h ago')
    expect(relativeTime('2026-01-01T15:20:00Z', now)).toBe('in 3 h 20 min')
    expect(relativeTime('2026-01-03T12:00:00Z', now)).toBe('in 2 d')
  })
})

describe('formatWhen', () => {
  it('shows the weekday only for another day', () => {
    const now = new Date('2026-01-01T12:00:00Z') // a Thursday
    expect(formatWhen('2026-01-01T17:00:00Z', now, 'UTC')).toBe('17:00')
    expect(formatWhen('2026-01-02T17:00:00Z', now, 'UTC')).toBe('Fri 17:00')
    expect(formatWhen('2026-01-01T23:30:00Z', now, 'Europe/Berlin')).toBe('Fri 00:30')
  })
})

describe('loads that race live events', () => {
  // A list of (name, state) standing in for the app's state.
  const setup = () => {
    const kind = new LiveKind()
    const list = new Map<string, string>()
    const event = (name: string, st: string) => applyLive([kind], () => { list.set(name, st) })
    return { kind, list, event }
  }

  it('apply the events that came while the answer was in flight on top of it', async () => {
    const { kind, list, event } = setup()
    let answer!: (v: Array<[string, string]>) => void
    const loading = kind.load(() => new Promise<Array<[string, string]>>((r) => { answer = r }), (rows) => {
      list.clear()
      for (const [n, st] of rows) list.set(n, st)
    })
    event('web', 'running') // shown at once…
    expect(list.get('web')).toBe('running')
    answer([['web', 'exited'], ['db', 'running']]) // …and the older answer does not undo it
    await loading
    expect(Object.fromEntries(list)).toEqual({ web: 'running', db: 'running' })
  })

  it('keep each load\'s events apart and none once it is done', async () => {
    const { kind, list, event } = setup()
    const answers: Array<(v: string) => void> = []
    const load = () => kind.load(() => new Promise<string>((r) => answers.push(r)), (st) => { list.set('web', st) })
    const first = load()
    event('web', 'paused')
    const second = load()
    event('web', 'running')
    answers[1]('exited')
    await second
    expect(list.get('web')).toBe('running')
    answers[0]('exited')
    await first
    expect(list.get('web')).toBe('running')
    // a later load's answer stands: nothing old is replayed over it
    const third = load()
    answers[2]('stopped')
    await third
    expect(list.get('web')).toBe('stopped')
  })

  it('a failed load replays nothing and keeps no events', async () => {
    const { kind, list, event } = setup()
    let fail!: (e: Error) => void
    const loading = kind.load(() => new Promise<string>((_, r) => { fail = r }), (st) => { list.set('web', st) })
    event('web', 'running')
    fail(new Error('offline'))
    await expect(loading).rejects.toThrow('offline')
    list.set('web', 'exited')
    await kind.load(async () => 'exited', (st) => { list.set('web', st) })
    expect(list.get('web')).toBe('exited')
  })
})

describe('protection', () => {
  it('adds force to an action path with or without a query', async () => {
    const { withForce } = await import('../src/lib/api')
    expect(withForce('/api/stacks/web/stop')).toBe('/api/stacks/web/stop?force=true')
    expect(withForce('/api/stacks/web/stop?host=nas')).toBe('/api/stacks/web/stop?host=nas&force=true')
  })
  it('tells a protected refusal from other conflicts', async () => {
    const { ApiError } = await import('../src/lib/api')
    const { isProtectedRefusal } = await import('../src/lib/protect')
    expect(isProtectedRefusal(new ApiError(409, 'protected', 'x'))).toBe(true)
    expect(isProtectedRefusal(new ApiError(409, 'self_protection', 'x'))).toBe(false)
    expect(isProtectedRefusal(new Error('x'))).toBe(false)
  })
})

describe('label origin', () => {
  it('names the compose service of a stack and the container of a standalone one', async () => {
    const { labelOrigin } = await import('../src/lib/format')
    expect(labelOrigin({ target_type: 'stack', origin: 'web, worker' })).toBe('from labels of compose service web, worker')
    expect(labelOrigin({ target_type: 'container', origin: 'solo' })).toBe('from labels of container solo')
    expect(labelOrigin({ target_type: 'stack', origin: null })).toBe('from labels')
  })
})
