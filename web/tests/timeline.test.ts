import { describe, expect, it } from 'vitest'
import { laneStateOf, layoutTimeline, stateAfter, ticks } from '../src/lib/timeline'
import type { Action, Upcoming } from '../src/lib/types'

const START = Date.parse('2026-03-10T00:00:00Z')
const H = 3600_000
function up(id: number, target: string, action: Action, hoursFromStart: number, type: 'stack' | 'container' = 'stack'): Upcoming {
  return { schedule_id: id, host: 'local', target_type: type, target_id: target, action, at: new Date(START + hoursFromStart * H).toISOString() }
}

describe('layoutTimeline', () => {
  it('gives two hosts\' stacks of the same name a lane each (local keys as before)', () => {
    const l = layoutTimeline([up(1, 'web', 'stop', 6), { ...up(2, 'web', 'start', 8), host: 'nas' }, { ...up(3, 'web', 'stop', 9), host: 'local' }], {
      start: START, hours: 24, timeZone: 'UTC', states: { 'stack:nas:web': 'stopped' },
    })
    expect(l.lanes.map((x) => [x.key, x.fires])).toEqual([['stack:web', 2], ['stack:nas:web', 1]])
    expect(l.lanes[1]!.segments[0]).toEqual({ left: 0, width: 33.333, state: 'stopped' })
  })

  it('places fires on a 24 h lane by time', () => {
    const l = layoutTimeline([up(1, 'web', 'stop', 6), up(2, 'web', 'start', 18)], { start: START, hours: 24, timeZone: 'UTC' })
    expect(l.lanes).toHaveLength(1)
    expect(l.lanes[0]!.markers.map((m) => [m.left, m.action])).toEqual([[25, 'stop'], [75, 'start']])
  })

  it('shows the expected state between fires', () => {
    const l = layoutTimeline([up(1, 'web', 'stop', 6), up(2, 'web', 'start', 18)], {
      start: START, hours: 24, timeZone: 'UTC', states: { 'stack:web': 'running' },
    })
    expect(l.lanes[0]!.segments).toEqual([
      { left: 0, width: 25, state: 'running' },
      { left: 25, width: 50, state: 'stopped' },
      { left: 75, width: 25, state: 'running' },
    ])
  })

  it('leaves the part before the first fire blank when the state is unknown', () => {
    const l = layoutTimeline([up(1, 'gone', 'stop', 12)], { start: START, hours: 24, timeZone: 'UTC' })
    expect(l.lanes[0]!.segments).toEqual([{ left: 50, width: 50, state: 'stopped' }])
  })

  it('uses the 7-day scale', () => {
    const entries = [0, 1, 2, 3, 4, 5, 6].map((d) => up(1, 'web', 'stop', d * 24 + 23))
    const l = layoutTimeline(entries, { start: START, hours: 168, timeZone: 'UTC' })
    expect(l.lanes[0]!.markers).toHaveLength(7)
    expect(l.lanes[0]!.markers[0]!.left).toBeCloseTo((23 / 168) * 100, 3)
  })

  it('drops fires outside the window', () => {
    const l = layoutTimeline([up(1, 'web', 'stop', -1), up(1, 'web', 'stop', 25), up(1, 'web', 'stop', 1)], { start: START, hours: 24, timeZone: 'UTC' })
    expect(l.lanes[0]!.fires).toBe(1)
  })

  it('merges fires that would overlap into one counted marker', () => {
    const entries = [0, 1, 2, 3].map((i) => up(1, 'web', i % 2 ? 'start' : 'stop', 10 + i / 60))
    const l = layoutTimeline(entries, { start: START, hours: 24, timeZone: 'UTC', clusterPct: 1 })
    const m = l.lanes[0]!.markers
    expect(m).toHaveLength(1)
    expect(m[0]!.count).toBe(4)
    expect(m[0]!.action).toBe('mixed')
    expect(m[0]!.items).toHaveLength(4)
  })

  it('keeps separate lanes per target, stacks before containers, sorted by name', () => {
    const l = layoutTimeline([
      up(1, 'zeta', 'stop', 1), up(2, 'db', 'restart', 2, 'container'), up(3, 'alpha', 'pause', 3), up(4, 'zeta', 'start', 4),
    ], { start: START, hours: 24, timeZone: 'UTC' })
    expect(l.lanes.map((x) => x.key)).toEqual(['stack:alpha', 'stack:zeta', 'container:db'])
    expect(l.lanes[1]!.fires).toBe(2)
  })

  it('keeps names as data, untouched', () => {
    const xss = '<img src=x onerror=alert(1)>'
    const l = layoutTimeline([up(1, xss, 'stop', 1, 'container')], { start: START, hours: 24, timeZone: 'UTC' })
    expect(l.lanes[0]!.target_id).toBe(xss)
  })
})

describe('ticks', () => {
  it('every 3 hours on a 24 h window, with the day at midnight', () => {
    const t = ticks(START + 30 * 60_000, 24, 'UTC')
    expect(t.map((x) => x.label)).toEqual(['03:00', '06:00', '09:00', '12:00', '15:00', '18:00', '21:00', 'Wed 11'])
    expect(t.find((x) => x.label === 'Wed 11')!.major).toBe(true)
    expect(t.filter((x) => x.mid).map((x) => x.label)).toEqual(['06:00', '12:00', '18:00', 'Wed 11'])
  })

  it('at each midnight on a 7-day window, in the given zone', () => {
    const t = ticks(START, 168, 'Asia/Tokyo') // 00:00 UTC = 09:00 in Tokyo
    expect(t).toHaveLength(7)
    expect(t[0]!.label).toBe('Wed 11')
    expect(t[0]!.left).toBeCloseTo((15 / 168) * 100, 3)
  })

  it('labels each day once where clocks change at midnight', () => {
    const days = (from: string, tz: string) => ticks(Date.parse(from), 168, tz).map((x) => x.label)
    // Azores: 00:00 is skipped on 29 March and happens twice on 25 October.
    expect(days('2026-03-26T12:00:00Z', 'Atlantic/Azores')).toEqual(['Fri 27', 'Sat 28', 'Sun 29', 'Mon 30', 'Tue 31', 'Wed 1', 'Thu 2'])
    expect(days('2026-10-22T12:00:00Z', 'Atlantic/Azores')).toEqual(['Fri 23', 'Sat 24', 'Sun 25', 'Mon 26', 'Tue 27', 'Wed 28', 'Thu 29'])
    // Santiago skips from 24:00 to 01:00 on 6 September: the day starts at 01:00.
    const sep = ticks(Date.parse('2026-09-05T12:00:00Z'), 24, 'America/Santiago')
    const sunday = sep.find((x) => x.label === 'Sun 6')!
    expect(sunday.major).toBe(true)
    expect(sunday.left).toBeCloseTo((16 / 24) * 100, 3) // 01:00 -03 = 04:00 UTC, 16 h after the start
  })

  it('follows half-hour zones', () => {
    const t = ticks(START, 24, 'Asia/Kolkata') // UTC+5:30
    expect(t[0]!.left).toBeCloseTo((0.5 / 24) * 100, 3) // 06:00 local = 00:30 UTC
    expect(t[0]!.label).toBe('06:00')
  })
})

describe('states', () => {
  it('derives the state after an action', () => {
    expect(stateAfter('stop', 'running')).toBe('stopped')
    expect(stateAfter('start', 'stopped')).toBe('running')
    expect(stateAfter('pause', 'running')).toBe('paused')
    expect(stateAfter('pause', 'stopped')).toBe('stopped')
    expect(stateAfter('unpause', 'paused')).toBe('running')
    expect(stateAfter('restart', 'stopped')).toBe('running')
  })

  it('maps Docker states and stack statuses', () => {
    expect(laneStateOf('exited')).toBe('stopped')
    expect(laneStateOf('partial')).toBe('partial')
    expect(laneStateOf(undefined)).toBe('unknown')
  })
})

describe('lanes for windowed targets', () => {
  it('adds an empty lane for a target with a window and no fires', () => {
    const l = layoutTimeline([up(1, 'web', 'stop', 6)], {
      start: START, hours: 24, timeZone: 'UTC',
      extraLanes: [{ target_type: 'stack', target_id: 'web' }, { target_type: 'stack', target_id: 'quiet' }],
    })
    expect(l.lanes.map((x) => [x.key, x.fires])).toEqual([['stack:quiet', 0], ['stack:web', 1]])
  })
})
