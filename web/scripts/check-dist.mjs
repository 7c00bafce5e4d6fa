// Fails the build if dist/index.html would break the server's strict CSP
// (inline scripts or styles), is missing its hashed assets, or a precompressed
// `.br`/`.gz` variant (scripts/precompress.mjs) is missing or stale (where
// the plain file is not kept, the `.br` must decode to the inflated `.gz`).
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'

// A text file is there as `.gz` and `.br` (scripts/precompress.mjs), or plain
// when compressing did not make it smaller.
function plain(rel) {
  const url = new URL(`../dist/${rel}`, import.meta.url)
  return existsSync(url) ? readFileSync(url) : gunzipSync(readFileSync(new URL(`../dist/${rel}.gz`, import.meta.url)))
}
const html = plain('index.html').toString('utf8')
const problems = []
for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
  if (!/\bsrc=/.test(m[1]) || m[2].trim()) problems.push('inline <script>')
}
if (/<style\b/i.test(html)) problems.push('inline <style>')
if (/\sstyle=/i.test(html)) problems.push('style= attribute')
if (/\son[a-z]+=/i.test(html)) problems.push('inline event handler')
const assets = readdirSync(new URL('../dist/assets/', import.meta.url))
const bundle = [...new Set(assets.map((f) => f.replace(/\.(br|gz)$/, '')))].filter((f) => /\.(js|css)$/.test(f))
if (!bundle.some((f) => /^index-[\w-]+\.js$/.test(f))) problems.push('no hashed JS bundle in dist/assets')
for (const f of bundle) {
  const data = plain(`assets/${f}`)
  for (const [ext, decode] of [['br', brotliDecompressSync], ['gz', gunzipSync]]) {
    const variant = new URL(`../dist/assets/${f}.${ext}`, import.meta.url)
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
