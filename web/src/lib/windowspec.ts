// Window specs ("sleep mode") and the editor's days/hours picker.
//
// Grammar (the server has the final word): `always` | `never` | rules
// separated by `,`; a rule is `DAYS HH:MM-HH:MM`, DAYS one day (`Mon`…`Sun`
// or in full, `Monday`…`Sunday`, any case, as in cron) or a range (`Mon-Fri`,
// `monday-friday`, `Sun-Thu` wraps); the end is exclusive,
// `24:00` is allowed as an end, and an end before the start is an overnight
// window that belongs to its start day.
//
// The picker shows one row per distinct from/to pair with a checkbox per
// weekday. Its text is canonical: rules with the same hours are merged,
// runs of days become short-named ranges, an end at midnight is written `24:00`. Any
// text the parser reads can be shown in the picker, and the picker's text
// parses back to the same rows.

export const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const
export type Day = (typeof DAYS)[number]
export const DAY_NAMES = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'] as const

export interface PickerRule {
  /** Monday first, seven entries. */
  days: boolean[]
  /** "HH:MM", 00:00..23:59. */
  from: string
  /** "HH:MM"; "00:00" and "24:00" both mean midnight at the end. */
  to: string
}

export type PickerMode = 'always' | 'never' | 'rules'

export interface Picker {
  mode: PickerMode
  rules: PickerRule[]
}

export type ParseResult = { ok: true; picker: Picker } | { ok: false; error: string }

const TIME = /^(\d{2}):(\d{2})$/

function minutes(t: string, end: boolean): number | null {
  const m = TIME.exec(t)
  if (!m) return null
  const h = Number(m[1])
  const min = Number(m[2])
  if (min > 59) return null
  if (h === 24 && min === 0 && end) return 24 * 60
  if (h > 23) return null
  return h * 60 + min
}

/** Mon…Sun or Monday…Sunday, any case (as the server reads them). */
function dayIndex(name: string): number {
  const n = name.toLowerCase()
  const i = DAYS.findIndex((d) => d.toLowerCase() === n)
  return i >= 0 ? i : DAY_NAMES.findIndex((d) => d.toLowerCase() === n)
}

/** Normalises an end time: midnight is `24:00`. */
function endText(t: string): string {
  return t === '00:00' ? '24:00' : t
}

export function emptyRule(): PickerRule {
  return { days: [true, true, true, true, true, false, false], from: '08:00', to: '19:00' }
}

/** A message for a picker row that cannot be written as a rule, or null. */
export function ruleError(r: PickerRule): string | null {
  if (!r.days.some(Boolean)) return 'Pick at least one day.'
  const f = minutes(r.from, false)
  const t = minutes(endText(r.to), true)
  if (f === null) return 'Enter a start time (HH:MM).'
  if (t === null) return 'Enter an end time (HH:MM).'
  if (f === t) return 'Start and end are the same time.'
  return null
}

/** Runs of selected days as "Mon", "Mon-Fri", "Sat-Mon" (wrapping), Monday first where possible. */
export function dayRanges(days: boolean[]): string[] {
  const sel = DAYS.map((_, i) => !!days[i])
  if (sel.every(Boolean)) return ['Mon-Sun']
  if (!sel.some(Boolean)) return []
  // Start scanning right after an unselected day, so that no run is cut in two.
  let startAt = 0
  while (sel[(startAt + 6) % 7]) startAt++
  const out: string[] = []
  let i = 0
  while (i < 7) {
    const d = (startAt + i) % 7
    if (!sel[d]) { i++; continue }
    let j = i
    while (j + 1 < 7 && sel[(startAt + j + 1) % 7]) j++
    const last = (startAt + j) % 7
    out.push(j === i ? DAYS[d]! : `${DAYS[d]}-${DAYS[last]}`)
    i = j + 1
  }
  // Monday-first reading order for the runs.
  const first = (s: string) => dayIndex(s.slice(0, 3))
  return out.sort((a, b) => first(a) - first(b))
}

/** The spec text for the picker. Rows that are not valid are left out. */
export function specFromPicker(p: Picker): string {
  if (p.mode === 'always') return 'always'
  if (p.mode === 'never') return 'never'
  const parts: string[] = []
  for (const r of p.rules) {
    if (ruleError(r)) continue
    for (const days of dayRanges(r.days)) parts.push(`${days} ${r.from}-${endText(r.to)}`)
  }
  return parts.length ? parts.join(', ') : 'never'
}

/** Reads a spec into picker rows; rules with the same hours share a row. */
export function parseSpec(text: string): ParseResult {
  const t = text.trim()
  if (!t) return { ok: false, error: 'Enter a spec: always, never, or rules like “Mon-Fri 08:00-19:00”.' }
  if (t.toLowerCase() === 'always') return { ok: true, picker: { mode: 'always', rules: [] } }
  if (t.toLowerCase() === 'never') return { ok: true, picker: { mode: 'never', rules: [] } }
  const rules: PickerRule[] = []
  for (const raw of t.split(',')) {
    const part = raw.trim()
    const m = /^([A-Za-z]+)(?:\s*-\s*([A-Za-z]+))?\s+(\S+)\s*-\s*(\S+)$/.exec(part)
    if (!m) return { ok: false, error: `“${part}” is not a rule like “Mon-Fri 08:00-19:00”.` }
    const a = dayIndex(m[1]!)
    const b = m[2] === undefined ? a : dayIndex(m[2])
    if (a < 0) return { ok: false, error: `Unknown day “${m[1]}” in “${part}” (Mon…Sun or Monday…Sunday).` }
    if (b < 0) return { ok: false, error: `Unknown day “${m[2]}” in “${part}” (Mon…Sun or Monday…Sunday).` }
    const from = m[3]!
    const to = m[4]!
    const f = minutes(from, false)
    const e = minutes(to, true)
    if (f === null) return { ok: false, error: `Bad start time “${from}” in “${part}” (HH:MM, 00:00-23:59).` }
    if (e === null) return { ok: false, error: `Bad end time “${to}” in “${part}” (HH:MM, up to 24:00).` }
    if (f === e) return { ok: false, error: `Start and end are the same in “${part}”.` }
    const days = [false, false, false, false, false, false, false]
    for (let i = a; ; i = (i + 1) % 7) {
      days[i] = true
      if (i === b) break
    }
    const toNorm = endText(to)
    const same = rules.find((r) => r.from === from && endText(r.to) === toNorm)
    if (same) same.days = same.days.map((d, i) => d || days[i]!)
    else rules.push({ days, from, to: toNorm })
  }
  return { ok: true, picker: { mode: 'rules', rules } }
}

/** The canonical text of a spec when the picker can show it, else the text as typed (trimmed). */
export function canonicalSpec(text: string): string {
  const r = parseSpec(text)
  return r.ok ? specFromPicker(r.picker) : text.trim()
}

/** "Mon-Fri 08:00-19:00" → a short sentence; null when it cannot be read. */
export function describeSpec(text: string): string | null {
  const r = parseSpec(text)
  if (!r.ok) return null
  if (r.picker.mode === 'always') return 'Always up'
  if (r.picker.mode === 'never') return 'Always down'
  const parts = r.picker.rules.map((rule) => {
    const days = dayRanges(rule.days).map((d) => d.replace('-', '–')).join(', ')
    const overnight = (minutes(endText(rule.to), true) ?? 0) < (minutes(rule.from, false) ?? 0)
    return `${days} ${rule.from}–${endText(rule.to)}${overnight ? ' (overnight)' : ''}`
  })
  return `Up ${parts.join('; ')}`
}

/** Durations like 30s, 15m, 2h, or 0. Returns a message or null. */
export function graceError(text: string): string | null {
  const t = text.trim()
  if (t === '0') return null
  if (/^\d+(s|m|h)$/.test(t)) return null
  return 'A duration like 30s, 15m or 2h, or 0 for at once.'
}
