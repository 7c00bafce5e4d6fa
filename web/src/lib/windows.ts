// Window editor form state, payloads, and a debounced, race-free caller for
// previews and dry runs.
import type { Window, WindowInput } from './types'
import { graceError, parseSpec, ruleError } from './windowspec'

/** The editable fields, picked from Window (as the schedule editor does). */
export type WindowForm = Pick<
  Window,
  'host' | 'target_type' | 'target_id' | 'spec' | 'timezone' | 'down_action' | 'enforce' | 'grace' | 'enabled'
>

export function newWindowForm(defaults: Partial<WindowForm> = {}, zone = 'UTC'): WindowForm {
  return {
    host: 'local',
    target_type: 'stack',
    target_id: '',
    spec: 'Mon-Fri 08:00-19:00',
    timezone: zone,
    down_action: 'stop',
    enforce: 'both',
    grace: '15m',
    enabled: true,
    ...defaults,
  }
}

export function formFromWindow(w: Window): WindowForm {
  return {
    host: w.host || 'local',
    target_type: w.target_type,
    target_id: w.target_id,
    spec: w.spec,
    timezone: w.timezone,
    down_action: w.down_action,
    enforce: w.enforce,
    grace: w.grace,
    enabled: w.enabled,
  }
}

export type WindowErrors = Partial<Record<keyof WindowForm, string>>

export function validateWindowForm(f: WindowForm): WindowErrors {
  const e: WindowErrors = {}
  if (!f.target_id.trim()) e.target_id = `Choose a ${f.target_type} for this window.`
  if (!f.spec.trim()) e.spec = 'Enter when the target should be up.'
  else {
    const p = parseSpec(f.spec)
    if (p.ok && p.picker.mode === 'rules') {
      const bad = p.picker.rules.map(ruleError).find(Boolean)
      if (bad) e.spec = bad
    }
  }
  if (!f.timezone.trim()) e.timezone = 'Choose a time zone.'
  const g = graceError(f.grace)
  if (g) e.grace = g
  return e
}

/** The body for POST (no original) or PUT (only changed fields). */
export function toWindowPayload(f: WindowForm, original?: WindowForm): WindowInput {
  const clean: WindowForm = {
    ...f,
    target_id: f.target_id.trim(),
    spec: f.spec.trim().replace(/\s+/g, ' '),
    timezone: f.timezone.trim(),
    grace: f.grace.trim(),
  }
  if (!original) return { ...clean }
  const out: WindowInput = {}
  for (const k of Object.keys(clean) as (keyof WindowForm)[]) {
    if (clean[k] !== original[k]) (out as Record<string, unknown>)[k] = clean[k]
  }
  return out
}

export type Settled<R> = { ok: true; value: R } | { ok: false; error: string; code: string | null; status: number | null }

/**
 * Debounces calls and drops answers that a newer request overtook, so what is
 * shown always matches the latest input.
 */
export class Latest<A, R> {
  private seq = 0
  private timer: ReturnType<typeof setTimeout> | null = null

  constructor(
    private readonly call: (arg: A) => Promise<R>,
    private readonly onResult: (r: Settled<R>, arg: A) => void,
    private readonly delayMs = 300,
  ) {}

  request(arg: A): void {
    const seq = ++this.seq
    if (this.timer) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = null
      void this.run(seq, arg)
    }, this.delayMs)
  }

  private async run(seq: number, arg: A): Promise<void> {
    try {
      const value = await this.call(arg)
      if (seq === this.seq) this.onResult({ ok: true, value }, arg)
    } catch (e) {
      if (seq !== this.seq) return
      const err = e as { message?: string; code?: string; status?: number }
      this.onResult({ ok: false, error: err.message ?? String(e), code: err.code ?? null, status: err.status ?? null }, arg)
    }
  }

  cancel(): void {
    this.seq++
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }
}

/** "+1 h" etc.: an override end `hours` from now. */
export function hoursFromNow(hours: number, now = Date.now()): Date {
  return new Date(now + hours * 3600_000)
}
