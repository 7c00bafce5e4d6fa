import { describe, expect, it } from 'vitest'
import { diffGroups, diffSummary, parseDocument, type ImportResult } from '../src/lib/transfer'

const empty: ImportResult = { applied: false, created: [], updated: [], deleted: [], unchanged: [], errors: [] }

describe('import diff', () => {
  it('lists errors first and leaves out empty groups', () => {
    const r = { ...empty, created: [{ kind: 'schedule', name: 'stop stack web' }], errors: [{ kind: 'window', name: 'stack x', message: 'bad spec' }] }
    const g = diffGroups(r)
    expect(g.map((x) => x.title)).toEqual(['Errors (nothing will be changed)', 'To create'])
    expect(g[0].lines).toEqual(['window stack x: bad spec'])
    expect(diffSummary(r)).toBe('1 error: nothing will be changed')
  })
  it('says what a dry run would do and what an import did', () => {
    const r = { ...empty, created: [{ kind: 'host', name: 'nas' }], unchanged: [{ kind: 'schedule', name: 'a' }, { kind: 'schedule', name: 'b' }] }
    expect(diffSummary(r)).toBe('Would import: 1 created, 0 updated, 0 deleted, 2 unchanged')
    expect(diffSummary({ ...r, applied: true })).toBe('Imported: 1 created, 0 updated, 0 deleted, 2 unchanged')
  })
  it('reads a file as a JSON object or says why not', () => {
    expect(parseDocument('{"version":2}')).toEqual({ document: { version: 2 } })
    expect(parseDocument('[1]')).toHaveProperty('error')
    expect(parseDocument('nope')).toEqual({ error: 'The file is not JSON.' })
  })
})
