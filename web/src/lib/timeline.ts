// Lays out upcoming schedule fires on a time window (24 h or 7 days) as one
// lane per target: markers at the fire times, and the state the target is
// expected to be in between them (stopped after a stop, and so on).
import type { Action, TargetType, Upcoming } from './types'

export type LaneState = 'running' | 'stopped' | 'paused' | 'partial' | 'unknown'

export interface TimelineMarker {
  /** Position from the window start, in percent (0..100). */
  left: number
  at: string
  action: Action | 'mixed'
  count: number
  items: Upcoming[]
}

export interface TimelineSegment {
  left: number
  width: number
  state: LaneState
}

export interface TimelineLane {
  key: string
  target_type: TargetType
  target_id: string
  host?: string
  markers: TimelineMarker[]
  segments: TimelineSegment[]
  fires: number
}

export interface TimelineTick {
  left: number
  label: string
  /** Midnight (a new day). */
  major: boolean
  /** Every 6 hours: still labelled on narrow screens. */
  mid: boolean
}

export interface TimelineLayout {
  start: number
  end: number
  lanes: TimelineLane[]
  ticks: TimelineTick[]
}

export interface TimelineOptions {
  start: Date | number
  hours: number
  /** Zone for tick labels; the browser's when omitted. */
  timeZone?: string
  /** Current state per lane key (`stack:NAME` / `container:NAME`), for the first segment. */
  states?: Record<string, LaneState>
  /** Markers closer than this (percent of the width) are merged. */
  clusterPct?: number
  /** Targets that get a lane even without fires (those with a window). */
  extraLanes?: { target_type: TargetType; target_id: string; host?: string }[]
}

/** One lane per target, (host, name): a host other than `local` is part of the key. */
export function laneKey(type: TargetType, id: string, host?: string | null): string {
  return host && host !== 'local' ? `${type}:${host}:${id}` : `${type}:${id}`
}

export function stateAfter(action: Action, before: LaneState): LaneState {
  switch (action) {
    case 'stop': return 'stopped'
    case 'start': return before === 'paused' ? 'paused' : 'running'
    case 'restart': return 'running'
    case 'pause': return before === 'stopped' ? 'stopped' : 'paused'
    case 'unpause': return before === 'stopped' ? 'stopped' : 'running'
    // a job runs, then has exited
    case 'run': return 'stopped'
  }
}

/** Maps a stack status or Docker container state to a lane state. */
export function laneStateOf(status: string | undefined | null): LaneState {
  switch (status) {
    case 'running': case 'restarting': return 'running'
    case 'stopped': case 'exited': case 'created': case 'dead': case 'removing': return 'stopped'
    case 'paused': return 'paused'
    case 'partial': return 'partial'
    default: return 'unknown'
  }
}

const round = (n: number) => Math.round(n * 1000) / 1000

export function layoutTimeline(entries: Upcoming[], opts: TimelineOptions): TimelineLayout {
  const start = typeof opts.start === 'number' ? opts.start : opts.start.getTime()
  const span = opts.hours * 3600_000
  const end = start + span
  const clusterPct = opts.clusterPct ?? (opts.hours > 24 ? 0.6 : 0.9)
  const byLane = new Map<string, Upcoming[]>()
  for (const e of entries) {
    const t = Date.parse(e.at)
    if (Number.isNaN(t) || t < start || t > end) continue
    const key = laneKey(e.target_type, e.target_id, e.host)
    let list = byLane.get(key)
    if (!list) byLane.set(key, (list = []))
    list.push(e)
  }
  const lanes: TimelineLane[] = []
  for (const x of opts.extraLanes ?? []) {
    const key = laneKey(x.target_type, x.target_id, x.host)
    if (!byLane.has(key)) {
      lanes.push({ key, target_type: x.target_type, target_id: x.target_id, host: x.host, markers: [], segments: [], fires: 0 })
      byLane.set(key, [])
    }
  }
  for (const [key, list] of byLane) {
    if (!list.length) continue
    list.sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || a.schedule_id - b.schedule_id)
    const pos = (iso: string) => ((Date.parse(iso) - start) / span) * 100
    // markers, merging close neighbours
    const markers: TimelineMarker[] = []
    for (const e of list) {
      const left = pos(e.at)
      const last = markers[markers.length - 1]
      if (last && left - last.left < clusterPct) {
        last.count++
        last.items.push(e)
        if (last.action !== e.action) last.action = 'mixed'
      } else {
        markers.push({ left: round(left), at: e.at, action: e.action, count: 1, items: [e] })
      }
    }
    // expected state between fires
    const segments: TimelineSegment[] = []
    let state: LaneState = opts.states?.[key] ?? 'unknown'
    let from = 0
    const push = (to: number) => {
      if (to <= from) return
      const prev = segments[segments.length - 1]
      if (prev && prev.state === state && Math.abs(prev.left + prev.width - from) < 1e-6) {
        prev.width = round(prev.width + (to - from))
      } else {
        segments.push({ left: round(from), width: round(to - from), state })
      }
    }
    for (const e of list) {
      const at = pos(e.at)
      push(at)
      state = stateAfter(e.action, state)
      from = at
    }
    push(100)
    const first = list[0]!
    lanes.push({
      key,
      target_type: first.target_type,
      target_id: first.target_id,
      host: first.host,
      markers,
      segments: segments.filter((s) => s.state !== 'unknown'),
      fires: list.length,
    })
  }
  lanes.sort((a, b) =>
    a.target_type === b.target_type
      ? a.target_id.localeCompare(b.target_id) || (a.host ?? '').localeCompare(b.host ?? '')
      : a.target_type === 'stack' ? -1 : 1)
  return { start, end, lanes, ticks: ticks(start, opts.hours, opts.timeZone) }
}

const partsCache = new Map<string, Intl.DateTimeFormat>()
function zoneParts(t: number, timeZone?: string): { hour: number; minute: number; weekday: string; day: string } {
  const k = timeZone ?? ''
  let f = partsCache.get(k)
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      hour: '2-digit', minute: '2-digit', weekday: 'short', day: 'numeric', hourCycle: 'h23', timeZone,
    })
    partsCache.set(k, f)
  }
  const p = f.formatToParts(new Date(t))
  const get = (type: string) => p.find((x) => x.type === type)?.value ?? ''
  return { hour: Number(get('hour')) % 24, minute: Number(get('minute')), weekday: get('weekday'), day: get('day') }
}

/**
 * Ticks every 3 hours (24 h) or at each start of a day (longer), in the zone.
 * A day is labelled where its date begins, not at a 00:00 that some zones
 * skip or repeat when their clocks change at midnight.
 */
export function ticks(start: number, hours: number, timeZone?: string): TimelineTick[] {
  const span = hours * 3600_000
  const step = 15 * 60_000
  const out: TimelineTick[] = []
  const daily = hours > 24
  const first = Math.ceil(start / step) * step
  let prevDay = zoneParts(first - step, timeZone).day
  for (let t = first; t <= start + span; t += step) {
    const p = zoneParts(t, timeZone)
    const newDay = p.day !== prevDay
    prevDay = p.day
    const left = round(((t - start) / span) * 100)
    if (newDay) {
      out.push({ left, label: `${p.weekday} ${p.day}`, major: true, mid: true })
    } else if (!daily && p.minute === 0 && p.hour % 3 === 0) {
      out.push({ left, label: `${String(p.hour).padStart(2, '0')}:00`, major: false, mid: p.hour % 6 === 0 })
    }
  }
  return out
}
