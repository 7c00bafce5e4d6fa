import { describe, expect, it } from 'vitest'
import { ansiSegments, appendCapped, formatBytes, lineMatches, logFileText, sparkPoints, stripAnsi, type LogLine } from '../src/lib/insight'

describe('ANSI colours', () => {
  it('become classes on plain-text segments', () => {
    expect(ansiSegments('plain \u001b[31mred\u001b[0m and \u001b[1;92mbold green\u001b[22m still green')).toEqual([
      { text: 'plain ', classes: [] },
      { text: 'red', classes: ['ansi-fg-1'] },
      { text: ' and ', classes: [] },
      { text: 'bold green', classes: ['ansi-fg-10', 'ansi-bold'] },
      { text: ' still green', classes: ['ansi-fg-10'] },
    ])
  })

  it('drop other escapes and control characters, and keep markup as text', () => {
    expect(ansiSegments('\u001b[2K\u001b[1Gdone\u0007 <b>&amp;</b>')).toEqual([{ text: 'done <b>&amp;</b>', classes: [] }])
  })

  it('skip 256-colour and true-colour arguments without mistaking them for codes', () => {
    const segs = ansiSegments('\u001b[38;5;1mx\u001b[38;2;4;3;1my')
    expect(segs.map((s) => s.text).join('')).toBe('xy')
    expect(segs.flatMap((s) => s.classes)).toEqual([])
  })

  it('strip to the visible text', () => {
    expect(stripAnsi('\u001b[33mwarn\u001b[m: disk')).toBe('warn: disk')
  })
})

describe('log lines', () => {
  const line = (text: string, container?: string): LogLine => ({ at: '2026-12-02T10:00:00Z', stream: 'stdout', text, container })

  it('keep only the newest lines past the cap', () => {
    expect(appendCapped([1, 2, 3], [4, 5], 4)).toEqual([2, 3, 4, 5])
    expect(appendCapped([1], [2], 4)).toEqual([1, 2])
  })

  it('match a search in the visible text or the container, ignoring case and colour', () => {
    expect(lineMatches(line('\u001b[31mERROR\u001b[0m connection refused'), 'error conn')).toBe(true)
    expect(lineMatches(line('all good', 'db-1'), 'DB-')).toBe(true)
    expect(lineMatches(line('all good'), 'bad')).toBe(false)
    expect(lineMatches(line('anything'), '  ')).toBe(true)
  })

  it('download as text with time, stream and container', () => {
    expect(logFileText([line('\u001b[1mhi\u001b[0m', 'web-1'), { at: null, stream: 'stderr', text: 'oops' }])).toBe(
      '2026-12-02T10:00:00Z stdout [web-1] hi\n- stderr oops\n')
  })
})

describe('figures', () => {
  it('sizes in binary units', () => {
    expect([0, 512, 1536, 10 * 1024 * 1024, 3 * 1024 ** 3].map(formatBytes)).toEqual(['0 B', '512 B', '1.5 KiB', '10 MiB', '3.0 GiB'])
  })

  it('sparklines span the box with the newest value at the right', () => {
    expect(sparkPoints([0, 50, 100], 100, 20)).toBe('0,20 50,10 100,0')
    expect(sparkPoints([5], 100, 20, 10)).toBe('100,10')
    expect(sparkPoints([], 100, 20)).toBe('')
    expect(sparkPoints([200], 10, 10, 100)).toBe('10,0')
  })
})
