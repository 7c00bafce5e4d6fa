// Prints the raw and gzipped size of the built UI bundle (JS + CSS).
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { gunzipSync, gzipSync } from 'node:zlib'

const dir = new URL('../dist/assets/', import.meta.url)
let raw = 0
let gz = 0
// Plain, or kept only as `.gz` (scripts/precompress.mjs).
const files = [...new Set(readdirSync(dir).map((f) => f.replace(/\.(br|gz)$/, '')))].sort()
for (const f of files) {
  if (!/\.(js|css)$/.test(f)) continue
  const url = new URL(f, dir)
  const buf = existsSync(url) ? readFileSync(url) : gunzipSync(readFileSync(new URL(`${f}.gz`, dir)))
  const g = gzipSync(buf, { level: 9 }).length
  raw += buf.length
  gz += g
  console.log(`${f.padEnd(32)} ${(buf.length / 1024).toFixed(1).padStart(7)} KiB  gzip ${(g / 1024).toFixed(1).padStart(6)} KiB`)
}
console.log(`total JS+CSS: ${(raw / 1024).toFixed(1)} KiB, gzipped ${(gz / 1024).toFixed(1)} KiB`)
