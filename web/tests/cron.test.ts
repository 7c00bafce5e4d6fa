import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  CRON_PRESETS, CronPreviewer, describeCron, expandMacro, formFromSchedule, newScheduleForm, presetFor,
  quickCronCheck, timeZoneList, toPayload, validateForm, type PreviewResult,
} from '../src/lib/cron'
import type { Schedule } from '../src/lib/types'

describe('presets and descriptions', () => {
  it('has the presets the issue names', () => {
    expect(CRON_PRESETS).toContainEqual({ label: 'Every night at 23:00', cron: '0 23 * * *' })
    expect(CRON_PRESETS).toContainEqual({ label: 'Weekdays at 07:00', cron: '0 7 * * 1-5' })
  })

  it('finds the preset for an expression, ignoring extra spaces', () => {
    expect(presetFor('  0  23 * *   * ')?.label).toBe('Every night at 23:00')
    expect(presetFor('5 23 * * *')).toBeUndefined()
  })

  it('describes cron in words, 24-hour clock', () => {
    expect(describeCron('0 23 * * *')).toBe('At 23:00')
    expect(describeCron('0 7 * * 1-5')).toBe('At 07:00, Monday through Friday')
    expect(describeCron('*/15 * * * *')).toBe('Every 15 minutes')
    expect(describeCron('@daily')).toBe('At 00:00')
    expect(describeCron('0 0 3 * * *')).toBe('At 03:00') // leading seconds field
  })

  it('returns null for what it cannot read', () => {
    expect(describeCron('not cron')).toBeNull()
    expect(describeCron('')).toBeNull()
    expect(describeCron('@sometimes')).toBeNull()
  })

  it('expands macros', () => {
    expect(expandMacro('@hourly')).toBe('0 * * * *')
    expect(expandMacro('@WEEKLY')).toBe('0 0 * * 0')
    expect(expandMacro('1 2 3 4 5')).toBe('1 2 3 4 5')
  })

  it('checks the field count before asking the server', () => {
    expect(quickCronCheck('')).toMatch(/Enter/)
    expect(quickCronCheck('* * *')).toMatch(/Too few fields: 3/)
    expect(quickCronCheck('* * * * * * *')).toMatch(/Too many fields/)
    expect(quickCronCheck('0 23 * * *')).toBeNull()
    expect(quickCronCheck('0 0 23 * * *')).toBeNull()
    expect(quickCronCheck('@midnight')).toBeNull()
    expect(quickCronCheck('@never')).toMatch(/Unknown macro/)
  })
})

describe('form state', () => {
  const sched: Schedule = {
    id: 7, target_type: 'stack', target_id: 'web', action: 'stop', cron: '0 23 * * *', timezone: 'Europe/Berlin',
    enabled: true, created_at: '', updated_at: '', next_run: null, last_run: null,
  }

  it('starts with sensible defaults and accepts a target', () => {
    const f = newScheduleForm({ target_id: 'web' }, 'Europe/Paris')
    expect(f).toEqual({
      host: 'local', target_type: 'stack', target_id: 'web', action: 'stop', timing: 'cron', cron: '0 23 * * *', at: '',
      timezone: 'Europe/Paris', enabled: true, timeout: '', steps: [], on_failure: 'stop',
    })
  })

  it('sends a one-time schedule as the instant of its wall time in its zone', () => {
    const f = newScheduleForm({ target_id: 'web', timing: 'at', at: '2027-07-01T18:30' }, 'Europe/Berlin')
    expect(toPayload(f)).toEqual({ host: 'local', target_type: 'stack', target_id: 'web', action: 'stop', at: '2027-07-01T16:30:00.000Z', timezone: 'Europe/Berlin', enabled: true })
    const back = formFromSchedule({ ...sched, cron: null, at: '2027-07-01T16:30:00Z' })
    expect((({ timing, at }) => ({ timing, at }))(back)).toEqual({ timing: 'at', at: '2027-07-01T18:30' })
    expect(validateForm({ ...f, at: '2020-01-01T00:00' }).at).toMatch(/passed/)
    expect(validateForm({ ...f, at: '' }).at).toMatch(/date and time/)
    // Switching an existing cron schedule to once: the instant replaces the cron.
    expect(toPayload({ ...formFromSchedule(sched), timing: 'at', at: '2027-01-10T03:00' }, formFromSchedule(sched))).toEqual({ at: '2027-01-10T02:00:00.000Z' })
  })

  it('sends the time limit only for a run, and the steps of a sequence', () => {
    const run = newScheduleForm({ target_type: 'container', target_id: 'backup', action: 'run', timeout: '30m' }, 'UTC')
    expect(toPayload(run).timeout).toBe('30m')
    expect(toPayload({ ...run, action: 'stop' }).timeout).toBeUndefined()
    expect(toPayload({ ...run, timeout: '' }, run)).toEqual({ timeout: '' })
    const seq = newScheduleForm({
      target_type: 'sequence', on_failure: 'continue',
      steps: [{ host: 'local', target_type: 'stack', target_id: ' app ', action: 'stop' }, { host: 'nas', target_type: 'container', target_id: 'backup', action: 'run' }],
    }, 'UTC')
    expect(toPayload(seq)).toEqual({
      target_type: 'sequence', cron: '0 23 * * *', timezone: 'UTC', enabled: true, on_failure: 'continue',
      steps: [{ host: 'local', target_type: 'stack', target_id: 'app', action: 'stop' }, { host: 'nas', target_type: 'container', target_id: 'backup', action: 'run' }],
    })
    expect(validateForm({ ...seq, steps: [] }).steps).toMatch(/at least one/)
    expect(validateForm({ ...seq, steps: [{ ...seq.steps[0]!, target_id: '' }] }).steps).toMatch(/Step 1/)
  })

  it('sends the host on create, and on update when it changed', () => {
    const f = newScheduleForm({ target_id: 'web' }, 'UTC')
    expect(toPayload(f).host).toBe('local')
    expect(toPayload({ ...f, host: 'nas' }).host).toBe('nas')
    expect(toPayload({ ...f, host: 'nas' }, f)).toEqual({ host: 'nas' })
    expect(toPayload(f, { ...f, host: 'nas' })).toEqual({ host: 'local' })
  })

  it('validates the target, cron and zone', () => {
    const f = newScheduleForm({}, 'UTC')
    expect(validateForm(f).target_id).toMatch(/stack/)
    f.target_type = 'container'
    expect(validateForm(f).target_id).toMatch(/container/)
    f.target_id = 'db'
    f.cron = '* *'
    f.timezone = ' '
    const e = validateForm(f)
    expect(e.target_id).toBeUndefined()
    expect(e.cron).toMatch(/Too few/)
    expect(e.timezone).toBeTruthy()
  })

  it('builds a full, trimmed body for create', () => {
    const f = newScheduleForm({ target_id: '  web ', cron: ' 0  7 * * 1-5 ' }, 'UTC')
    expect(toPayload(f)).toEqual({ host: 'local', target_type: 'stack', target_id: 'web', action: 'stop', cron: '0 7 * * 1-5', timezone: 'UTC', enabled: true })
  })

  it('sends only changed fields on update', () => {
    const orig = formFromSchedule(sched)
    const f = { ...orig }
    expect(toPayload(f, orig)).toEqual({})
    f.enabled = false
    f.cron = '0 22 * * *'
    expect(toPayload(f, orig)).toEqual({ enabled: false, cron: '0 22 * * *' })
  })

  it('lists time zones with UTC first and extras included', () => {
    const z = timeZoneList(['Mars/Olympus'])
    expect(z[0]).toBe('UTC')
    expect(z).toContain('Europe/Berlin')
    expect(z).toContain('Mars/Olympus')
    expect(new Set(z).size).toBe(z.length)
  })
})

describe('CronPreviewer', () => {
  beforeEach(() => { vi.useFakeTimers() })
  afterEach(() => { vi.useRealTimers() })

  it('debounces typing into one request', async () => {
    const fetch = vi.fn(async () => ({ next: ['2026-01-01T23:00:00Z'] }))
    const results: PreviewResult[] = []
    const p = new CronPreviewer(fetch, (r) => results.push(r), 300)
    p.request('0 2 * * *', 'UTC')
    p.request('0 23 * * *', 'UTC')
    await vi.advanceTimersByTimeAsync(299)
    expect(fetch).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(1)
    expect(fetch).toHaveBeenCalledTimes(1)
    expect(fetch).toHaveBeenCalledWith('0 23 * * *', 'UTC')
    expect(results).toEqual([{ cron: '0 23 * * *', timezone: 'UTC', next: ['2026-01-01T23:00:00Z'], error: null, errorCode: null }])
  })

  it('shows the server message for an invalid expression', async () => {
    const fetch = vi.fn(async () => { throw Object.assign(new Error('minute 61 is out of range 0-59'), { code: 'invalid_cron' }) })
    const results: PreviewResult[] = []
    const p = new CronPreviewer(fetch, (r) => results.push(r), 10)
    p.request('61 * * * *', 'UTC')
    await vi.advanceTimersByTimeAsync(10)
    expect(results[0]).toMatchObject({ error: 'minute 61 is out of range 0-59', errorCode: 'invalid_cron', next: [] })
  })

  it('answers a malformed expression at once, without the server', async () => {
    const fetch = vi.fn(async () => ({ next: [] }))
    const results: PreviewResult[] = []
    const p = new CronPreviewer(fetch, (r) => results.push(r), 10)
    p.request('* *', 'UTC')
    expect(results[0]).toMatchObject({ errorCode: 'invalid_cron' })
    await vi.advanceTimersByTimeAsync(50)
    expect(fetch).not.toHaveBeenCalled()
  })

  it('drops a slow answer that a newer request overtook', async () => {
    let release: (v: { next: string[] }) => void = () => {}
    const fetch = vi.fn()
      .mockImplementationOnce(() => new Promise((r) => { release = r }))
      .mockImplementationOnce(async () => ({ next: ['new'] }))
    const results: PreviewResult[] = []
    const p = new CronPreviewer(fetch, (r) => results.push(r), 10)
    p.request('0 1 * * *', 'UTC')
    await vi.advanceTimersByTimeAsync(10)
    p.request('0 2 * * *', 'UTC')
    await vi.advanceTimersByTimeAsync(10)
    release({ next: ['old'] })
    await vi.advanceTimersByTimeAsync(0)
    expect(results.map((r) => r.next[0])).toEqual(['new'])
  })

  it('cancel drops pending work', async () => {
    const fetch = vi.fn(async () => ({ next: [] }))
    const p = new CronPreviewer(fetch, () => {}, 10)
    p.request('0 1 * * *', 'UTC')
    p.cancel()
    await vi.advanceTimersByTimeAsync(50)
    expect(fetch).not.toHaveBeenCalled()
  })
})
