import { describe, expect, it } from 'vitest'
import { Selection, summariseBulk, targetKey, type Selectable } from '../src/lib/bulk'

const st = (id: string, host?: string): Selectable => ({ target_type: 'stack', target_id: id, host })
const ct = (id: string): Selectable => ({ target_type: 'container', target_id: id })

describe('bulk selection', () => {
  it('toggles one target, keyed by type, host and name', () => {
    let s = new Selection()
    s = s.toggle(st('web'))
    expect(s.has(st('web'))).toBe(true)
    expect(s.has(ct('web'))).toBe(false)
    expect(s.has(st('web', 'nas'))).toBe(false)
    expect(targetKey(st('web'))).toBe(targetKey(st('web', 'local')))
    s = s.toggle(st('web'))
    expect(s.size).toBe(0)
    expect(s.toggle(st('a'), true).toggle(st('a'), true).size).toBe(1)
    expect(s.toggle(st('a'), false).size).toBe(0)
  })

  it('is immutable: each change is a new selection', () => {
    const a = new Selection()
    const b = a.toggle(st('web'))
    expect(a.size).toBe(0)
    expect(b).not.toBe(a)
  })

  it('"select all visible" selects the visible ones, then clears them, leaving hidden ones', () => {
    const visible = [st('a'), st('b'), ct('c')]
    let s = new Selection().toggle(st('hidden'))
    expect(s.allState(visible)).toBe('none')
    s = s.toggle(st('a'))
    expect(s.allState(visible)).toBe('some')
    s = s.toggleAll(visible)
    expect(s.allState(visible)).toBe('all')
    expect(s.size).toBe(4)
    s = s.toggleAll(visible)
    expect(s.allState(visible)).toBe('none')
    expect(s.has(st('hidden'))).toBe(true)
    expect(new Selection().allState([])).toBe('none')
  })

  it('drops targets that disappeared, and builds the request body stacks first', () => {
    const existing = [ct('db'), st('web'), st('api', 'nas')]
    let s = new Selection().toggle(ct('db')).toggle(st('gone')).toggle(st('web')).toggle(st('api', 'nas'))
    s = s.prune(existing)
    expect(s.size).toBe(3)
    expect(s.prune(existing)).toBe(s)
    expect(s.targets(existing)).toEqual([
      { target_type: 'stack', target_id: 'web' },
      { target_type: 'stack', target_id: 'api', host: 'nas' },
      { target_type: 'container', target_id: 'db' },
    ])
    expect(s.clear().size).toBe(0)
  })
})

describe('bulk results', () => {
  it('names each target with ok or its failure', () => {
    const r = summariseBulk('stop', [
      { target_type: 'stack', target_id: 'web', action: 'stop', ok: true, results: [
        { container: 'web-1', ok: true, error: null }, { container: 'web-2', ok: true, error: null }] },
      { target_type: 'stack', target_id: 'api', action: 'stop', ok: false, results: [
        { container: 'api-1', ok: false, error: 'timeout' }] },
      { target_type: 'container', target_id: 'ghost', ok: false, error: 'no such container' },
    ])
    expect(r.title).toBe('Stop: 2 of 3 failed')
    expect(r.failed).toBe(2)
    expect(r.lines.map((l) => [l.label, l.ok, l.message])).toEqual([
      ['stack web', true, 'Stopped (2 containers)'],
      ['stack api', false, 'api-1: timeout'],
      ['container ghost', false, 'no such container'],
    ])
  })

  it('says when all went well', () => {
    const r = summariseBulk('start', [{ target_type: 'container', target_id: 'db', action: 'start', ok: true, results: [] }])
    expect(r.title).toBe('Start: all 1 done')
    expect(r.lines[0]!.message).toBe('Started')
  })
})
