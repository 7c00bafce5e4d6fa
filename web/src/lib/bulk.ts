// Selection of stacks and standalone containers for bulk actions, and the
// per-target summary of a bulk answer.
import { ACTION_LABEL, ACTION_PAST } from './format'
import { onHost } from './hosts'
import type { Action, BulkItemResult, BulkTarget, TargetType } from './types'

export interface Selectable {
  target_type: TargetType
  target_id: string
  host?: string
}

/** One key per target: type, host and name. */
export function targetKey(t: Selectable): string {
  return `${t.target_type}:${t.host ?? 'local'}:${t.target_id}`
}

export type AllState = 'none' | 'some' | 'all'

/** The selection: keys in the order they were picked. Pure: each call returns a new set. */
export class Selection {
  constructor(readonly keys: ReadonlySet<string> = new Set()) {}

  has(t: Selectable): boolean {
    return this.keys.has(targetKey(t))
  }

  get size(): number {
    return this.keys.size
  }

  toggle(t: Selectable, on?: boolean): Selection {
    const k = targetKey(t)
    const next = new Set(this.keys)
    const want = on ?? !next.has(k)
    if (want) next.add(k)
    else next.delete(k)
    return new Selection(next)
  }

  /** How much of the visible list is selected (for a tri-state "select all" box). */
  allState(visible: Selectable[]): AllState {
    if (!visible.length) return 'none'
    const n = visible.filter((t) => this.has(t)).length
    return n === 0 ? 'none' : n === visible.length ? 'all' : 'some'
  }

  /** "Select all visible": selects every visible one, or clears them when all already are. */
  toggleAll(visible: Selectable[]): Selection {
    const next = new Set(this.keys)
    if (this.allState(visible) === 'all') for (const t of visible) next.delete(targetKey(t))
    else for (const t of visible) next.add(targetKey(t))
    return new Selection(next)
  }

  /** Drops targets that no longer exist (a stack removed, a container gone). */
  prune(existing: Selectable[]): Selection {
    const keep = new Set(existing.map(targetKey))
    const next = new Set([...this.keys].filter((k) => keep.has(k)))
    return next.size === this.keys.size ? this : new Selection(next)
  }

  clear(): Selection {
    return new Selection()
  }

  /** The request body's targets, for those still present, stacks first. */
  targets(existing: Selectable[]): BulkTarget[] {
    return existing
      .filter((t) => this.has(t))
      .sort((a, b) => (a.target_type === b.target_type ? 0 : a.target_type === 'stack' ? -1 : 1))
      .map((t) => (t.host && t.host !== 'local'
        ? { target_type: t.target_type, target_id: t.target_id, host: t.host }
        : { target_type: t.target_type, target_id: t.target_id }))
  }
}

export interface BulkLine {
  key: string
  label: string
  ok: boolean
  message: string
}

/** One line per target of a bulk answer: ok, or failed with the reason (each failed container named). */
export function summariseBulk(action: Action, results: BulkItemResult[]): { title: string; ok: number; failed: number; lines: BulkLine[] } {
  const lines: BulkLine[] = results.map((r) => {
    const failedContainers = (r.results ?? []).filter((c) => !c.ok)
    const ok = r.ok === true && !r.error && failedContainers.length === 0
    let message: string
    if (ok) {
      const n = r.results?.length ?? 0
      message = r.target_type === 'stack' ? `${ACTION_PAST[action]} (${n} container${n === 1 ? '' : 's'})` : ACTION_PAST[action] ?? 'ok'
    } else {
      const parts: string[] = []
      if (r.error) parts.push(r.error)
      for (const c of failedContainers) parts.push(`${c.container}: ${c.error ?? 'failed'}`)
      message = parts.join('; ') || 'failed'
    }
    return { key: targetKey(r), label: `${r.target_type} ${r.target_id}${onHost(r.host)}`, ok, message }
  })
  const okN = lines.filter((l) => l.ok).length
  const failed = lines.length - okN
  const title = failed
    ? `${ACTION_LABEL[action]}: ${failed} of ${lines.length} failed`
    : `${ACTION_LABEL[action]}: all ${lines.length} done`
  return { title, ok: okN, failed, lines }
}
