import { describe, expect, it } from 'vitest'
import { layoutBands } from '../src/lib/bands'
import type { Transition } from '../src/lib/types'

const START = Date.parse('2026-03-10T00:00:00Z')
const H = 3600_000
const at = (h: number) => new Date(START + h * H).toISOString()
const tr = (h: number, desired: 'up' | 'down'): Transition => ({ at: at(h), desired })
const simple = (b: ReturnType<typeof layoutBands>) => b.map((x) => [x.left, x.width, x.desired, x.override])

describe('layoutBands', () => {
  it('splits 24 h at each transition', () => {
    const b = layoutBands({ start: START, hours: 24, initial: 'down', transitions: [tr(6, 'up'), tr(18, 'down'), tr(30, 'up')] })
    expect(simple(b)).toEqual([[0, 25, 'down', false], [25, 50, 'up', false], [75, 25, 'down', false]])
    expect(b[1]!.from).toBe(at(6))
    expect(b[1]!.to).toBe(at(18))
  })

  it('covers the whole range with no transitions', () => {
    expect(simple(layoutBands({ start: START, hours: 168, initial: 'up', transitions: [] }))).toEqual([[0, 100, 'up', false]])
  })

  it('uses the 7-day scale and merges repeated states', () => {
    const b = layoutBands({ start: START, hours: 168, initial: 'up', transitions: [tr(24, 'up'), tr(84, 'down')] })
    expect(simple(b)).toEqual([[0, 50, 'up', false], [50, 50, 'down', false]])
  })

  it('ignores transitions outside the range and sorts them', () => {
    const b = layoutBands({ start: START, hours: 24, initial: 'up', transitions: [tr(30, 'up'), tr(12, 'down'), tr(-2, 'up')] })
    expect(simple(b)).toEqual([[0, 50, 'up', false], [50, 50, 'down', false]])
  })

  it('a transition exactly at the start sets the first band', () => {
    const b = layoutBands({ start: START, hours: 24, initial: 'up', transitions: [tr(0, 'down'), tr(12, 'up')] })
    expect(simple(b)).toEqual([[0, 50, 'down', false], [50, 50, 'up', false]])
  })

  it('draws an override until it ends, then the spec again', () => {
    const b = layoutBands({
      start: START, hours: 24, initial: 'down', transitions: [tr(2, 'up'), tr(12, 'down')],
      override: { desired: 'down', until: at(6), by: 'ann', reason: null },
    })
    expect(simple(b)).toEqual([[0, 25, 'down', true], [25, 25, 'up', false], [50, 50, 'down', false]])
  })

  it('an override longer than the range fills it; an expired one is ignored', () => {
    const long = layoutBands({ start: START, hours: 24, initial: 'down', transitions: [tr(8, 'up')],
      override: { desired: 'up', until: at(48), by: 'ann', reason: null } })
    expect(simple(long)).toEqual([[0, 100, 'up', true]])
    const old = layoutBands({ start: START, hours: 24, initial: 'down', transitions: [tr(12, 'up')],
      override: { desired: 'up', until: at(-1), by: 'ann', reason: null } })
    expect(simple(old)).toEqual([[0, 50, 'down', false], [50, 50, 'up', false]])
  })
})
