// Cron form logic for the schedule editor: presets, the human description,
// form state to API payload, and a debounced, race-free preview.
import cronstrue from 'cronstrue'
import type { Action, ActionTargetType, OnFailure, Schedule, ScheduleInput, TargetType } from './types'
import { utcToZoned, zonedToUtc } from './format'
import { LOCAL, hostOf } from './hosts'

export interface CronPreset {
  label: string
  cron: string
}

export const CRON_PRESETS: CronPreset[] = [
  { label: 'Every night at 23:00', cron: '0 23 * * *' },
  { label: 'Every morning at 07:00', cron: '0 7 * * *' },
  { label: 'Weekdays at 07:00', cron: '0 7 * * 1-5' },
  { label: 'Weekdays at 19:00', cron: '0 19 * * 1-5' },
  { label: 'Fridays at 18:00', cron: '0 18 * * 5' },
  { label: 'Sundays at 03:00', cron: '0 3 * * 0' },
  { label: 'Every hour', cron: '0 * * * *' },
  { label: 'Every 15 minutes', cron: '*/15 * * * *' },
  { label: '1st of the month at 04:00', cron: '0 4 1 * *' },
]

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
}

export function normalizeCron(expr: string): string {
  return expr.trim().replace(/\s+/g, ' ')
}

export function expandMacro(expr: string): string {
  const n = normalizeCron(expr)
  return MACROS[n.toLowerCase()] ?? n
}

export function presetFor(expr: string): CronPreset | undefined {
  const n = normalizeCron(expr)
  return CRON_PRESETS.find((p) => p.cron === n)
}

/**
 * A quick local check before asking the server (which has the final word):
 * a macro, or 5 or 6 fields. Returns a message, or null when it looks plausible.
 */
export function quickCronCheck(expr: string): string | null {
  const n = normalizeCron(expr)
  if (!n) return 'Enter a cron expression, or pick a preset.'
  if (n.startsWith('@')) return MACROS[n.toLowerCase()] ? null : `Unknown macro ${n}.`
  const fields = n.split(' ').length
  if (fields < 5) return `Too few fields: ${fields} of 5 (minute hour day month weekday).`
  if (fields > 6) return `Too many fields: ${fields} (at most 6, with a leading seconds field).`
  return null
}

/** "At 23:00" etc.; null when cronstrue cannot read it. */
export function describeCron(expr: string): string | null {
  const n = expandMacro(expr)
  if (quickCronCheck(n)) return null
  try {
    return cronstrue.toString(n, { use24HourTimeFormat: true, throwExceptionOnParseError: true, verbose: false })
  } catch {
    return null
  }
}

/** One step of a sequence in the editor. */
export interface StepForm {
  host: string
  target_type: ActionTargetType
  target_id: string
  action: Action
}

/** What the editor lets a person set: a schedule's own fields. */
export interface ScheduleForm {
  host: string
  target_type: TargetType
  target_id: string
  action: Action
  /** Repeat on a cron expression, or run once at a wall time. */
  timing: 'cron' | 'at'
  cron: string
  /** A datetime-local value, read in `timezone`. */
  at: string
  timezone: string
  enabled: boolean
  /** A run's time limit (`30m`); empty: the server's default of 1 h. */
  timeout: string
  steps: StepForm[]
  on_failure: OnFailure
}

export function newScheduleForm(defaults: Partial<ScheduleForm> = {}, zone = 'UTC'): ScheduleForm {
  return {
    host: LOCAL,
    target_type: 'stack',
    target_id: '',
    action: 'stop',
    timing: 'cron',
    cron: '0 23 * * *',
    at: '',
    timezone: zone,
    enabled: true,
    timeout: '',
    steps: [],
    on_failure: 'stop',
    ...defaults,
  }
}

export function newStep(host = LOCAL): StepForm {
  return { host, target_type: 'stack', target_id: '', action: 'start' }
}

export function formFromSchedule(s: Schedule): ScheduleForm {
  return {
    host: hostOf(s),
    target_type: s.target_type,
    target_id: s.target_id,
    action: s.action,
    timing: s.at ? 'at' : 'cron',
    cron: s.cron ?? '0 23 * * *',
    at: s.at ? utcToZoned(s.at, s.timezone) : '',
    timezone: s.timezone,
    enabled: s.enabled,
    timeout: s.timeout ?? '',
    steps: (s.steps ?? []).map((st) => ({ host: hostOf(st), target_type: st.target_type, target_id: st.target_id, action: st.action })),
    on_failure: s.on_failure ?? 'stop',
  }
}

export type FormErrors = Partial<Record<keyof ScheduleForm, string>> & { steps?: string }

export function validateForm(f: ScheduleForm, now = Date.now()): FormErrors {
  const errors: FormErrors = {}
  if (f.target_type === 'sequence') {
    if (!f.steps.length) errors.steps = 'Add at least one step.'
    const empty = f.steps.findIndex((st) => !st.target_id.trim())
    if (empty >= 0) errors.steps = `Step ${empty + 1}: choose a ${f.steps[empty]!.target_type.replace('_', ' ')} to act on.`
  } else if (!f.target_id.trim()) {
    errors.target_id = `Choose a ${f.target_type} to act on.`
  }
  if (f.timing === 'cron') {
    const c = quickCronCheck(f.cron)
    if (c) errors.cron = c
  } else {
    const at = zonedToUtc(f.at, f.timezone || 'UTC')
    if (!at) errors.at = 'Choose a date and time.'
    else if (Date.parse(at) <= now) errors.at = 'That time has passed.'
  }
  if (!f.timezone.trim()) errors.timezone = 'Choose a time zone.'
  return errors
}

/** Whether the time limit applies: a run, or a sequence with a run step. */
export function usesTimeout(f: ScheduleForm): boolean {
  return f.target_type === 'sequence' ? f.steps.some((st) => st.action === 'run') : f.action === 'run'
}

function fullPayload(f: ScheduleForm): ScheduleInput {
  const when: ScheduleInput = f.timing === 'at' ? { at: zonedToUtc(f.at, f.timezone.trim()) ?? f.at } : { cron: normalizeCron(f.cron) }
  const common: ScheduleInput = { ...when, timezone: f.timezone.trim(), enabled: f.enabled }
  if (usesTimeout(f) && f.timeout.trim()) common.timeout = f.timeout.trim()
  if (f.target_type === 'sequence') {
    const steps = f.steps.map((st) => ({ ...st, target_id: st.target_id.trim() }))
    return { target_type: 'sequence', ...common, steps, on_failure: f.on_failure }
  }
  return { host: f.host, target_type: f.target_type, target_id: f.target_id.trim(), action: f.action, ...common }
}

/**
 * The body for POST (no original) or PUT (only the fields that changed).
 * Returns an empty object for an unchanged form.
 */
export function toPayload(f: ScheduleForm, original?: ScheduleForm): ScheduleInput {
  const full = fullPayload(f)
  if (!original) return full
  const before = fullPayload(original) as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(full)) {
    if (JSON.stringify(v) !== JSON.stringify(before[k])) out[k] = v
  }
  // A time limit taken away is sent as empty (the server drops it).
  if (before.timeout !== undefined && full.timeout === undefined) out.timeout = ''
  return out as ScheduleInput
}

export interface PreviewResult {
  cron: string
  timezone: string
  next: string[]
  error: string | null
  errorCode: string | null
}

export type PreviewFetch = (cron: string, timezone: string) => Promise<{ next: string[] }>

/**
 * Debounces preview requests and drops answers that arrive after a newer
 * request was made, so the shown preview always matches the field.
 */
export class CronPreviewer {
  private seq = 0
  private timer: ReturnType<typeof setTimeout> | null = null

  constructor(
    private readonly fetchPreview: PreviewFetch,
    private readonly onResult: (r: PreviewResult) => void,
    private readonly delayMs = 300,
  ) {}

  request(cron: string, timezone: string): void {
    const seq = ++this.seq
    if (this.timer) clearTimeout(this.timer)
    const local = quickCronCheck(cron)
    if (local) {
      this.timer = null
      this.onResult({ cron, timezone, next: [], error: local, errorCode: 'invalid_cron' })
      return
    }
    this.timer = setTimeout(() => {
      this.timer = null
      void this.run(seq, normalizeCron(cron), timezone)
    }, this.delayMs)
  }

  private async run(seq: number, cron: string, timezone: string): Promise<void> {
    try {
      const r = await this.fetchPreview(cron, timezone)
      if (seq !== this.seq) return
      this.onResult({ cron, timezone, next: r.next, error: null, errorCode: null })
    } catch (e) {
      if (seq !== this.seq) return
      const err = e as { message?: string; code?: string }
      this.onResult({ cron, timezone, next: [], error: err.message ?? String(e), errorCode: err.code ?? null })
    }
  }

  cancel(): void {
    this.seq++
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }
}

/** Every IANA zone the browser knows, with UTC and the given extras included, sorted. */
export function timeZoneList(extra: string[] = []): string[] {
  let zones: string[] = []
  try {
    const f = (Intl as unknown as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf
    zones = f ? f('timeZone') : []
  } catch {
    zones = []
  }
  const set = new Set(zones)
  set.add('UTC')
  for (const z of extra) if (z) set.add(z)
  return [...set].sort((a, b) => (a === 'UTC' ? -1 : b === 'UTC' ? 1 : a.localeCompare(b)))
}
