import { reactive } from 'vue'
import type { ActionResult } from './types'
import { ACTION_PAST, ACTION_LABEL } from './format'

export interface Toast {
  id: number
  kind: 'ok' | 'error' | 'info'
  title: string
  lines: string[]
}

export const toasts = reactive<Toast[]>([])
let nextId = 1

export function toast(kind: Toast['kind'], title: string, lines: string[] = [], ms?: number): void {
  const id = nextId++
  toasts.push({ id, kind, title, lines })
  while (toasts.length > 5) toasts.shift()
  setTimeout(() => dismiss(id), ms ?? (kind === 'error' ? 10_000 : 5_000))
}

export function dismiss(id: number): void {
  const i = toasts.findIndex((t) => t.id === id)
  if (i >= 0) toasts.splice(i, 1)
}

/** Title and lines for an action result, naming every failed container
 * (a sequence: every failed step; a run: its exit code and last lines). */
export function describeResult(r: ActionResult): { kind: Toast['kind']; title: string; lines: string[] } {
  if (r.steps) {
    const bad = r.steps.map((s, i) => [s, i + 1] as const).filter(([s]) => !s.ok)
    if (!bad.length) return { kind: 'ok', title: `Sequence ran: ${r.steps.length} step${r.steps.length === 1 ? '' : 's'} ok`, lines: [] }
    return {
      kind: 'error',
      title: `Sequence failed at step ${bad[0]![1]} of ${r.steps.length}`,
      lines: bad.map(([s, n]) => `step ${n} (${s.action} ${s.target_type} ${s.target_id}): ${s.results.find((x) => !x.ok)?.error ?? 'failed'}`),
    }
  }
  if (r.action === 'run') {
    const code = r.exit_code === null || r.exit_code === undefined ? 'did not exit' : `exit code ${r.exit_code}`
    const tail = (r.log_tail ?? []).slice(-5)
    if (r.ok) return { kind: 'ok', title: `Ran container ${r.target_id}: ${code}`, lines: tail }
    return { kind: 'error', title: `Run of container ${r.target_id} failed: ${r.results[0]?.error ?? code}`, lines: tail }
  }
  const what = `${r.target_type} ${r.target_id}`
  const n = r.results.length
  const failed = r.results.filter((x) => !x.ok)
  if (r.ok && failed.length === 0) {
    const count = r.target_type === 'stack' ? ` (${n} container${n === 1 ? '' : 's'})` : ''
    return { kind: 'ok', title: `${ACTION_PAST[r.action] ?? r.action} ${what}${count}`, lines: [] }
  }
  const title = n
    ? `${ACTION_LABEL[r.action] ?? r.action} ${what}: ${failed.length} of ${n} failed`
    : `${ACTION_LABEL[r.action] ?? r.action} ${what} failed`
  return { kind: 'error', title, lines: failed.map((x) => `${x.container}: ${x.error ?? 'failed'}`) }
}

export function toastResult(r: ActionResult): void {
  const d = describeResult(r)
  toast(d.kind, d.title, d.lines)
}
