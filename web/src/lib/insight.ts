// Logs and resource figures: ANSI colours as styled segments (never HTML),
// bounded line lists, search, downloads, byte sizes and sparklines. Pure.

import type { components } from './api-schema'

export type LogLine = components['schemas']['LogLine']

export type Stats = components['schemas']['Stats']

export interface Segment {
  text: string
  /** CSS classes: `ansi-fg-N` (0-15), `ansi-bold`, `ansi-italic`, `ansi-underline`. */
  classes: string[]
}

/** At most this many lines are kept in a viewer: the oldest go first. */
export const MAX_LINES = 5000

interface Style { fg: number | null; bold: boolean; italic: boolean; underline: boolean }

// CSI sequences (colours and the rest) and other escapes; only SGR (`m`) is kept as style.
// eslint-disable-next-line no-control-regex
const ESCAPE = /\u001b\[([0-9;?]*)([A-Za-z])|\u001b[^[]|[\u0000-\u0008\u000b-\u001f\u007f]/g

function applySgr(style: Style, params: string): Style {
  const codes = params === '' ? [0] : params.split(';').map((p) => Number(p) || 0)
  const s = { ...style }
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!
    if (c === 0) Object.assign(s, { fg: null, bold: false, italic: false, underline: false })
    else if (c === 1) s.bold = true
    else if (c === 3) s.italic = true
    else if (c === 4) s.underline = true
    else if (c === 22) s.bold = false
    else if (c === 23) s.italic = false
    else if (c === 24) s.underline = false
    else if (c >= 30 && c <= 37) s.fg = c - 30
    else if (c >= 90 && c <= 97) s.fg = c - 90 + 8
    else if (c === 39) s.fg = null
    // 256-colour and true-colour forms: their arguments are skipped, the colour is not kept.
    else if (c === 38 || c === 48) i += codes[i + 1] === 5 ? 2 : codes[i + 1] === 2 ? 4 : 0
  }
  return s
}

function classesOf(s: Style): string[] {
  const out: string[] = []
  if (s.fg !== null) out.push(`ansi-fg-${s.fg}`)
  if (s.bold) out.push('ansi-bold')
  if (s.italic) out.push('ansi-italic')
  if (s.underline) out.push('ansi-underline')
  return out
}

/** The line split at its colour codes into plain-text segments with classes. */
export function ansiSegments(text: string): Segment[] {
  const out: Segment[] = []
  let style: Style = { fg: null, bold: false, italic: false, underline: false }
  let last = 0
  const push = (t: string) => {
    if (!t) return
    const classes = classesOf(style)
    const prev = out[out.length - 1]
    if (prev && prev.classes.join(' ') === classes.join(' ')) prev.text += t
    else out.push({ text: t, classes })
  }
  for (const m of text.matchAll(ESCAPE)) {
    push(text.slice(last, m.index))
    last = m.index! + m[0].length
    if (m[2] === 'm') style = applySgr(style, m[1] ?? '')
  }
  push(text.slice(last))
  return out
}

export function stripAnsi(text: string): string {
  return ansiSegments(text).map((s) => s.text).join('')
}

/** `list` with `more` appended, keeping only the newest `cap`. */
export function appendCapped<T>(list: T[], more: T[], cap = MAX_LINES): T[] {
  const all = list.concat(more)
  return all.length > cap ? all.slice(all.length - cap) : all
}

/** Case-insensitive search in the visible text (and the container name). */
export function lineMatches(line: LogLine, query: string): boolean {
  const q = query.trim().toLowerCase()
  if (!q) return true
  return stripAnsi(line.text).toLowerCase().includes(q) || (line.container ?? '').toLowerCase().includes(q)
}

/** The loaded lines as a text file, one per line: time, stream, [container], text. */
export function logFileText(lines: LogLine[]): string {
  return lines
    .map((l) => [l.at ?? '-', l.stream, ...(l.container ? [`[${l.container}]`] : []), stripAnsi(l.text)].join(' '))
    .join('\n') + (lines.length ? '\n' : '')
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

/** "512 B", "1.5 MiB", "12 GiB". */
export function formatBytes(n: number): string {
  let v = n
  let u = 0
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${v} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[u]}`
}

/** SVG polyline points for `values` in a `width` × `height` box, newest at the right. */
export function sparkPoints(values: number[], width: number, height: number, max?: number): string {
  if (values.length === 0) return ''
  const top = Math.max(max ?? Math.max(...values), 1e-9)
  const step = values.length > 1 ? width / (values.length - 1) : 0
  return values
    .map((v, i) => {
      const x = values.length > 1 ? i * step : width
      const y = height - (Math.min(Math.max(v, 0), top) / top) * height
      return `${+x.toFixed(1)},${+y.toFixed(1)}`
    })
    .join(' ')
}
