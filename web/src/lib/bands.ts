// Up/down bands of a window on the dashboard timeline, from the state at the
// window start and the transitions the server's preview returns.
import type { Desired, Transition, WindowOverride } from './types'

export interface Band {
  /** Percent of the timeline width from its start. */
  left: number
  width: number
  desired: Desired
  /** RFC 3339 start and end of the band, for labels. */
  from: string
  to: string
  /** Part of the band comes from a manual override. */
  override: boolean
}

export interface BandOptions {
  start: number
  hours: number
  /** Desired state at `start`, from the window (its spec) alone. */
  initial: Desired
  transitions: Transition[]
  /** A manual override: holds its state from `start` until `until`. */
  override?: WindowOverride | null
}

const round = (n: number) => Math.round(n * 1000) / 1000

/** Contiguous bands covering [start, start + hours], merged where the state repeats. */
export function layoutBands(o: BandOptions): Band[] {
  const end = o.start + o.hours * 3600_000
  const span = end - o.start
  // points in time where the state may change, with the state from then on
  const points: { t: number; desired: Desired; override: boolean }[] = [{ t: o.start, desired: o.initial, override: false }]
  for (const tr of [...o.transitions].sort((a, b) => Date.parse(a.at) - Date.parse(b.at))) {
    const t = Date.parse(tr.at)
    if (Number.isNaN(t) || t >= end) continue
    if (t <= o.start) points[0] = { t: o.start, desired: tr.desired, override: false }
    else points.push({ t, desired: tr.desired, override: false })
  }
  const until = o.override ? Date.parse(o.override.until) : NaN
  if (o.override && !Number.isNaN(until) && until > o.start) {
    // the override wins until it ends; then the spec's state at that time
    const cut = Math.min(until, end)
    const after = [...points].reverse().find((p) => p.t <= cut)!.desired
    const kept = points.filter((p) => p.t > cut)
    points.length = 0
    points.push({ t: o.start, desired: o.override.desired, override: true })
    if (cut < end) points.push({ t: cut, desired: after, override: false })
    points.push(...kept)
  }
  const bands: Band[] = []
  for (let i = 0; i < points.length; i++) {
    const p = points[i]!
    const next = points[i + 1]?.t ?? end
    if (next <= p.t) continue
    const prev = bands[bands.length - 1]
    if (prev && prev.desired === p.desired && prev.override === p.override) {
      prev.width = round(((next - o.start) / span) * 100 - prev.left)
      prev.to = new Date(next).toISOString()
      continue
    }
    bands.push({
      left: round(((p.t - o.start) / span) * 100),
      width: round(((next - p.t) / span) * 100),
      desired: p.desired,
      from: new Date(p.t).toISOString(),
      to: new Date(next).toISOString(),
      override: p.override,
    })
  }
  return bands
}
