// Static guards for the strict CSP and "no data rendered as HTML".
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = join(__dirname, '..')
function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? files(p) : [p]
  })
}
const sources = files(join(root, 'src')).filter((f) => /\.(vue|ts)$/.test(f))

describe('source safety', () => {
  it.each(sources.map((f) => [f.slice(root.length + 1), f]))('%s renders no HTML from data and needs no unsafe CSP', (_name, file) => {
    const text = readFileSync(file, 'utf8')
    expect(text).not.toMatch(/v-html/)
    expect(text).not.toMatch(/\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write/)
    expect(text).not.toMatch(/\beval\(|new Function\(/)
    // static style attributes in templates would need 'unsafe-inline'
    const template = text.match(/<template>[\s\S]*<\/template>/)?.[0] ?? ''
    expect(template).not.toMatch(/\sstyle="/)
  })

  it('index.html has no inline script or style', () => {
    const html = readFileSync(join(root, 'index.html'), 'utf8')
    for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) {
      expect(m[1]).toMatch(/\bsrc=/)
      expect(m[2]!.trim()).toBe('')
    }
    expect(html).not.toMatch(/<style|\sstyle=/)
  })

  it('keeps no token in web storage', () => {
    for (const f of sources) {
      const text = readFileSync(f, 'utf8')
      for (const m of text.matchAll(/(localStorage|sessionStorage)\.setItem\(([^,]+),/g)) {
        expect(m[2]!.trim(), f).toBe('KEY') // only the theme preference (lib/theme.ts)
      }
    }
  })
})
