// Time formatting helpers. All API times are RFC 3339 in UTC.

export function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'
  } catch {
    return 'UTC'
  }
}

const fmtCache = new Map<string, Intl.DateTimeFormat>()
function fmt(key: string, opts: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  let f = fmtCache.get(key)
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', opts)
    fmtCache.set(key, f)
  }
  return f
}

/** "Mon 24 Nov, 23:00" in the given zone (browser's when omitted). */
export function formatDateTime(iso: string | Date, timeZone?: string): string {
  const d = typeof iso === 'string' ? new Date(iso) : iso
  if (Number.isNaN(d.getTime())) return String(iso)
  try {
    return fmt(`dt|${timeZone ?? ''}`, {
      weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
      hour12: false, timeZone,
    }).format(d)
  } catch {
    return d.toISOString()
  }
}

/** Full timestamp with seconds, for the audit log. */
export function formatTimestamp(iso: string, timeZone?: string): string {
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  return fmt(`ts|${timeZone ?? ''}`, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
    hour12: false, timeZone,
  }).format(d)
}

export function formatTime(iso: string | Date, timeZone?: string): string {
  const d = typeof iso === 'string' ? new Date(iso) : iso
  return fmt(`t|${timeZone ?? ''}`, { hour: '2-digit', minute: '2-digit', hour12: false, timeZone }).format(d)
}

/** "17:00" today, "Thu 17:00" on another day (in the zone). */
export function formatWhen(iso: string | Date, now: Date = new Date(), timeZone?: string): string {
  const d = typeof iso === 'string' ? new Date(iso) : iso
  const day = fmt(`d|${timeZone ?? ''}`, { year: 'numeric', month: '2-digit', day: '2-digit', timeZone })
  const time = formatTime(d, timeZone)
  if (day.format(d) === day.format(now)) return time
  const wd = fmt(`wd|${timeZone ?? ''}`, { weekday: 'short', timeZone }).format(d)
  return `${wd} ${time}`
}

/** "in 3 h 5 min", "2 min ago", "now". */
export function relativeTime(iso: string | Date, now: number = Date.now()): string {
  const t = typeof iso === 'string' ? Date.parse(iso) : iso.getTime()
  if (Number.isNaN(t)) return ''
  const diff = Math.round((t - now) / 1000)
  const abs = Math.abs(diff)
  let text: string
  if (abs < 45) return 'now'
  if (abs < 3600) text = `${Math.round(abs / 60)} min`
  else if (abs < 86400) {
    const h = Math.floor(abs / 3600)
    const m = Math.round((abs % 3600) / 60)
    text = m && h < 10 ? `${h} h ${m} min` : `${h} h`
  } else {
    const d = Math.floor(abs / 86400)
    const h = Math.round((abs % 86400) / 3600)
    text = h && d < 3 ? `${d} d ${h} h` : `${d} d`
  }
  return diff > 0 ? `in ${text}` : `${text} ago`
}

/** The short zone name ("CET", "GMT+1") of a zone at a time. */
export function zoneAbbrev(timeZone: string, at: Date = new Date()): string {
  try {
    const parts = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'short' }).formatToParts(at)
    return parts.find((p) => p.type === 'timeZoneName')?.value ?? timeZone
  } catch {
    return timeZone
  }
}

export const ACTION_LABEL: Record<string, string> = {
  start: 'Start', stop: 'Stop', restart: 'Restart', pause: 'Pause', unpause: 'Unpause', run: 'Run',
}
export const ACTION_PAST: Record<string, string> = {
  start: 'Started', stop: 'Stopped', restart: 'Restarted', pause: 'Paused', unpause: 'Unpaused', run: 'Ran',
}

/** The wall time "2026-12-24T18:00" (a datetime-local value) in `timeZone`, as a UTC instant. */
export function zonedToUtc(local: string, timeZone: string): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(local.trim())
  if (!m) return null
  const wall = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!)
  // The zone's offset at the guess, then again at the corrected instant (DST edges).
  let t = wall - offsetMs(wall, timeZone)
  t = wall - offsetMs(t, timeZone)
  return new Date(t).toISOString()
}

/** An instant as the datetime-local value of its wall time in `timeZone`. */
export function utcToZoned(iso: string, timeZone: string): string {
  const p = wallParts(new Date(iso).getTime(), timeZone)
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`
}

function wallParts(t: number, timeZone: string): Record<string, string> {
  const parts = fmt(`parts|${timeZone}`, {
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZone,
  }).formatToParts(new Date(t))
  return Object.fromEntries(parts.map((x) => [x.type, x.value]))
}

/** How far `timeZone`'s wall clock is ahead of UTC at instant `t`. */
function offsetMs(t: number, timeZone: string): number {
  const p = wallParts(t, timeZone)
  const wall = Date.UTC(+p.year!, +p.month! - 1, +p.day!, +p.hour!, +p.minute!, +p.second!)
  return wall - Math.floor(t / 1000) * 1000
}

/** Where a label-defined schedule or window comes from, for people. */
export function labelOrigin(o: { target_type: string; origin?: string | null }): string {
  if (!o.origin) return 'from labels'
  return o.target_type === 'stack' ? `from labels of compose service ${o.origin}` : `from labels of container ${o.origin}`
}
