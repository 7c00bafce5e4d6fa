// Fails the build if dist/index.html would break the server's strict CSP
// (inline scripts or styles), is missing its hashed assets, or a precompressed
// `.br`/`.gz` variant (scripts/precompress.mjs) is missing or stale (where
// the plain file is not kept, the `.br` must decode to the inflated `.gz`).
import { existsSync, readFileSync } from 'node:fs'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { dist, plainBytes, plainNames } from './dist-files.mjs'

const html = plainBytes('index.html').toString('utf8')
const problems = []
for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
  if (!/\bsrc=/.test(m[1]) || m[2].trim()) problems.push('inline <script>')
}
if (/<style\b/i.test(html)) problems.push('inline <style>')
if (/\sstyle=/i.test(html)) problems.push('style= attribute')
if (/\son[a-z]+=/i.test(html)) problems.push('inline event handler')
const bundle = plainNames('assets/').filter((f) => /\.(js|css)$/.test(f))
if (!bundle.some((f) => /^index-[\w-]+\.js$/.test(f))) problems.push('no hashed JS bundle in dist/assets')
for (const f of bundle) {
  const data = plainBytes(`assets/${f}`)
  for (const [ext, decode] of [['br', brotliDecompressSync], ['gz', gunzipSync]]) {
    const variant = new URL(`assets/${f}.${ext}`, dist)
    if (!existsSync(variant)) {
      if (data.length >= 1024) problems.push(`no ${f}.${ext}`)
    }
    else if (!decode(readFileSync(variant)).equals(data)) problems.push(`${f}.${ext} does not decode to ${f}`)
  }
}
if (problems.length) {
  console.error(`dist/ is not fit to embed: ${problems.join(', ')}`)
  process.exit(1)
}
