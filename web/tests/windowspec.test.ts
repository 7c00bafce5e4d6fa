import { describe, expect, it } from 'vitest'
import {
  canonicalSpec, dayRanges, describeSpec, emptyRule, graceError, parseSpec, ruleError, specFromPicker, type Picker,
} from '../src/lib/windowspec'
import { newWindowForm, toWindowPayload, validateWindowForm } from '../src/lib/windows'

const days = (...on: number[]) => [0, 1, 2, 3, 4, 5, 6].map((i) => on.includes(i))
const rules = (text: string): Picker => {
  const r = parseSpec(text)
  if (!r.ok) throw new Error(r.error)
  return r.picker
}

describe('picker → spec text', () => {
  it('writes runs of days as ranges, Monday first', () => {
    expect(dayRanges(days(0, 1, 2, 3, 4))).toEqual(['Mon-Fri'])
    expect(dayRanges(days(0, 1, 2, 3, 4, 5, 6))).toEqual(['Mon-Sun'])
    expect(dayRanges(days(0, 2, 4))).toEqual(['Mon', 'Wed', 'Fri'])
    expect(dayRanges(days(5, 6))).toEqual(['Sat-Sun'])
    // a run across the week's end stays one (wrapping) range
    expect(dayRanges(days(6, 0, 1, 2, 3))).toEqual(['Sun-Thu'])
    expect(dayRanges(days(0, 5, 6))).toEqual(['Sat-Mon'])
    expect(dayRanges(days())).toEqual([])
  })

  it('writes one rule per range, midnight as 24:00, and skips invalid rows', () => {
    expect(specFromPicker({ mode: 'rules', rules: [{ days: days(0, 1, 2, 3, 4), from: '08:00', to: '19:00' }] })).toBe('Mon-Fri 08:00-19:00')
    expect(specFromPicker({ mode: 'rules', rules: [{ days: days(0, 2), from: '09:00', to: '00:00' }] })).toBe('Mon 09:00-24:00, Wed 09:00-24:00')
    expect(specFromPicker({ mode: 'rules', rules: [
      { days: days(4), from: '22:00', to: '06:00' },
      { days: days(), from: '10:00', to: '11:00' },
      { days: days(5), from: '10:00', to: '10:00' },
    ] })).toBe('Fri 22:00-06:00')
    expect(specFromPicker({ mode: 'rules', rules: [] })).toBe('never')
    expect(specFromPicker({ mode: 'always', rules: [] })).toBe('always')
    expect(specFromPicker({ mode: 'never', rules: [emptyRule()] })).toBe('never')
  })

  it('says what is wrong with a row', () => {
    expect(ruleError({ days: days(), from: '08:00', to: '09:00' })).toMatch(/day/)
    expect(ruleError({ days: days(1), from: '', to: '09:00' })).toMatch(/start/)
    expect(ruleError({ days: days(1), from: '09:00', to: '09:00' })).toMatch(/same/)
    expect(ruleError({ days: days(1), from: '00:00', to: '00:00' })).toBeNull() // the whole day
    expect(ruleError(emptyRule())).toBeNull()
  })
})

describe('spec text → picker', () => {
  it('reads days in any case, ranges that wrap, overnight rules and 24:00', () => {
    expect(rules('mon-fri 08:00-19:00')).toEqual({ mode: 'rules', rules: [{ days: days(0, 1, 2, 3, 4), from: '08:00', to: '19:00' }] })
    expect(rules('Sun-Thu 07:00-24:00').rules[0]).toEqual({ days: days(6, 0, 1, 2, 3), from: '07:00', to: '24:00' })
    expect(rules('Fri 22:00-06:00').rules[0]).toEqual({ days: days(4), from: '22:00', to: '06:00' })
    expect(rules(' ALWAYS ')).toEqual({ mode: 'always', rules: [] })
    expect(rules('never').mode).toBe('never')
    expect(rules('monday-WEDNESDAY 08:00-09:00').rules[0]!.days).toEqual(days(0, 1, 2))
  })

  it('reads full day names in any case, as the server and cron do, and writes the short form', () => {
    expect(rules('monday 09:00-10:00').rules).toEqual([{ days: days(0), from: '09:00', to: '10:00' }])
    expect(rules('Monday-Friday 08:00-19:00').rules).toEqual([{ days: days(0, 1, 2, 3, 4), from: '08:00', to: '19:00' }])
    expect(rules('SATURDAY - sunday 10:00 - 16:00').rules[0]!.days).toEqual(days(5, 6))
    expect(rules('friday-Monday 22:00-06:00').rules[0]!.days).toEqual(days(4, 5, 6, 0))
    expect(rules('Mon-friday 08:00-09:00, Wednesday 08:00-09:00').rules[0]!.days).toEqual(days(0, 1, 2, 3, 4))
    expect(rules('tuesday-tuesday 01:00-02:00').rules[0]!.days).toEqual(days(1))
    expect(canonicalSpec('Monday-Friday 08:00-19:00, saturday 10:00-16:00')).toBe('Mon-Fri 08:00-19:00, Sat 10:00-16:00')
    expect(canonicalSpec('monday-sunday 09:00-00:00')).toBe('Mon-Sun 09:00-24:00')
    expect(describeSpec('Monday-Friday 08:00-19:00')).toBe('Up Mon–Fri 08:00–19:00')
    const r = parseSpec('Mondays 09:00-10:00')
    expect(r.ok ? null : r.error).toMatch(/Unknown day “Mondays”/)
  })

  it('merges rules with the same hours into one row', () => {
    expect(rules('Mon 09:00-17:00, Wed 09:00-17:00, Sat 10:00-12:00').rules).toEqual([
      { days: days(0, 2), from: '09:00', to: '17:00' },
      { days: days(5), from: '10:00', to: '12:00' },
    ])
    // an end at 00:00 is midnight, like 24:00
    expect(rules('Mon 09:00-00:00, Tue 09:00-24:00').rules).toEqual([{ days: days(0, 1), from: '09:00', to: '24:00' }])
  })

  it('refuses what the grammar does not allow, naming the part', () => {
    const bad = (t: string) => { const r = parseSpec(t); return r.ok ? null : r.error }
    expect(bad('')).toMatch(/Enter/)
    expect(bad('Mon 7-19')).toMatch(/“Mon 7-19”/)
    expect(bad('Mon 24:00-02:00')).toMatch(/start time “24:00”/)
    expect(bad('Mon 09:00-24:30')).toMatch(/end time/)
    expect(bad('Mon 09:00-09:00')).toMatch(/same/)
    expect(bad('Mon 00:00-00:00')).toMatch(/same/)
    expect(bad('Funday 09:00-10:00')).toMatch(/Unknown day “Funday”/)
    expect(bad('Mon-Xyz 09:00-10:00')).toMatch(/Unknown day “Xyz”/)
    expect(bad('Mon 09:00-10:00,')).toMatch(/is not a rule/)
  })
})

describe('round trip', () => {
  const texts = [
    'always', 'never', 'Mon-Fri 08:00-19:00', 'Mon-Sun 00:00-24:00', 'Fri 22:00-06:00', 'Sun-Thu 07:00-23:00',
    'Mon-Fri 08:00-12:00, Mon-Fri 13:00-18:00', 'Mon 09:00-17:00, Wed 09:00-17:00, Sat-Sun 10:00-14:00', 'Sat-Mon 20:00-02:00',
  ]
  it.each(texts)('canonical text %s parses to rows that write the same text', (t) => {
    expect(specFromPicker(rules(t))).toBe(t)
  })

  it('writes other spellings in canonical form, and that form is stable', () => {
    const cases: [string, string][] = [
      ['mon-fri 08:00-19:00', 'Mon-Fri 08:00-19:00'],
      ['  Mon - Fri   08:00 - 19:00 ', 'Mon-Fri 08:00-19:00'],
      ['Wed 09:00-17:00, Mon 09:00-17:00', 'Mon 09:00-17:00, Wed 09:00-17:00'],
      ['Mon 09:00-00:00', 'Mon 09:00-24:00'],
      ['Mon-Sun 06:00-07:00, Mon 06:00-07:00', 'Mon-Sun 06:00-07:00'],
      ['Saturday-Sunday 10:00-14:00', 'Sat-Sun 10:00-14:00'],
    ]
    for (const [input, canon] of cases) {
      expect(canonicalSpec(input)).toBe(canon)
      expect(canonicalSpec(canon)).toBe(canon)
    }
  })

  it('rows written by the picker parse back to the same rows', () => {
    const picker: Picker = { mode: 'rules', rules: [
      { days: days(0, 1, 2, 3, 4), from: '07:30', to: '18:45' },
      { days: days(5, 6, 0), from: '22:00', to: '02:00' },
      { days: days(2), from: '00:00', to: '24:00' },
    ] }
    expect(rules(specFromPicker(picker))).toEqual(picker)
  })

  it('leaves text the picker cannot read as typed', () => {
    expect(canonicalSpec(' Mon 7-19 ')).toBe('Mon 7-19')
  })
})

describe('descriptions and the form', () => {
  it('describes a spec in words', () => {
    expect(describeSpec('Mon-Fri 08:00-19:00')).toBe('Up Mon–Fri 08:00–19:00')
    expect(describeSpec('Fri 22:00-06:00')).toBe('Up Fri 22:00–06:00 (overnight)')
    expect(describeSpec('always')).toBe('Always up')
    expect(describeSpec('bad')).toBeNull()
  })

  it('checks grace durations', () => {
    for (const g of ['0', '30s', '15m', '2h']) expect(graceError(g)).toBeNull()
    for (const g of ['', '15', '1d', 'soon']) expect(graceError(g)).toBeTruthy()
  })

  it('validates and builds payloads', () => {
    const f = newWindowForm({}, 'Europe/Berlin')
    expect(validateWindowForm(f).target_id).toMatch(/stack/)
    f.target_id = ' web '
    f.spec = ' Mon-Fri  08:00-19:00 '
    expect(validateWindowForm(f)).toEqual({})
    expect(toWindowPayload(f)).toEqual({
      host: 'local', target_type: 'stack', target_id: 'web', spec: 'Mon-Fri 08:00-19:00', timezone: 'Europe/Berlin',
      down_action: 'stop', enforce: 'both', grace: '15m', enabled: true,
    })
    const orig = { ...f, target_id: 'web', spec: 'Mon-Fri 08:00-19:00' }
    expect(toWindowPayload({ ...orig, grace: '1h' }, orig)).toEqual({ grace: '1h' })
    expect(validateWindowForm({ ...orig, grace: 'x' }).grace).toBeTruthy()
  })
})
