import { describe, expect, it } from 'vitest'
import { localPath } from '../src/lib/nav'

describe('localPath', () => {
  it('keeps paths of this site and refuses anything else', () => {
    expect(localPath('/stacks/web?x=1')).toBe('/stacks/web?x=1')
    for (const bad of ['//evil.example/x', 'https://evil.example', 'javascript:alert(1)', '', undefined, 3]) {
      expect(localPath(bad)).toBeUndefined()
    }
  })
})
