// Export and import: the document is opaque to the UI; the import's answer is
// shown as a diff before anything is applied (a dry run first).

export interface ImportItem { kind: string; name: string }
export interface ImportProblem { kind: string; name: string; message: string }
export interface ImportResult {
  applied: boolean
  created: ImportItem[]
  updated: ImportItem[]
  deleted: ImportItem[]
  unchanged: ImportItem[]
  errors: ImportProblem[]
}
export type ImportMode = 'merge' | 'replace'

export interface DiffGroup { title: string; tone: 'ok' | 'warn' | 'fail' | 'muted'; lines: string[] }

/** The diff as groups people read top-down: errors first, then what changes. */
export function diffGroups(r: ImportResult): DiffGroup[] {
  const line = (i: ImportItem) => `${i.kind} ${i.name}`
  const groups: DiffGroup[] = [
    { title: 'Errors (nothing will be changed)', tone: 'fail', lines: r.errors.map((e) => `${e.kind}${e.name ? ` ${e.name}` : ''}: ${e.message}`) },
    { title: 'To create', tone: 'ok', lines: r.created.map(line) },
    { title: 'To update', tone: 'warn', lines: r.updated.map(line) },
    { title: 'To delete', tone: 'fail', lines: r.deleted.map(line) },
    { title: 'Unchanged', tone: 'muted', lines: r.unchanged.map(line) },
  ]
  return groups.filter((g) => g.lines.length > 0)
}

/** One sentence for a toast or a heading. */
export function diffSummary(r: ImportResult): string {
  if (r.errors.length) return `${r.errors.length} error${r.errors.length === 1 ? '' : 's'}: nothing ${r.applied ? 'was' : 'will be'} changed`
  const n = (k: ImportItem[], w: string) => `${k.length} ${w}`
  const parts = [n(r.created, 'created'), n(r.updated, 'updated'), n(r.deleted, 'deleted'), n(r.unchanged, 'unchanged')]
  return `${r.applied ? 'Imported' : 'Would import'}: ${parts.join(', ')}`
}

/** A file's text as JSON, or a sentence saying why it is not. */
export function parseDocument(text: string): { document: unknown } | { error: string } {
  try {
    const document = JSON.parse(text) as unknown
    if (typeof document !== 'object' || document === null || Array.isArray(document)) return { error: 'The file is not a DockNap export (a JSON object).' }
    return { document }
  } catch {
    return { error: 'The file is not JSON.' }
  }
}
