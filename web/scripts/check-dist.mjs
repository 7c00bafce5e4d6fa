// Fails the build if dist/index.html would break the server's strict CSP
// (inline scripts or styles) or is missing its hashed assets.
import { readFileSync, readdirSync } from 'node:fs'

const html = readFileSync(new URL('../dist/index.html', import.meta.url), 'utf8')
const problems = []
for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
  if (!/\bsrc=/.test(m[1]) || m[2].trim()) problems.push('inline <script>')
}
if (/<style\b/i.test(html)) problems.push('inline <style>')
if (/\sstyle=/i.test(html)) problems.push('style= attribute')
if (/\son[a-z]+=/i.test(html)) problems.push('inline event handler')
const assets = readdirSync(new URL('../dist/assets/', import.meta.url))
if (!assets.some((f) => /^index-[\w-]+\.js$/.test(f))) problems.push('no hashed JS bundle in dist/assets')
if (problems.length) {
  console.error(`dist/index.html violates the CSP rules: ${problems.join(', ')}`)
  process.exit(1)
}
