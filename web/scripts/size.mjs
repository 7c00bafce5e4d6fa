// Prints the raw and gzipped size of the built UI bundle (JS + CSS).
import { gzipSync } from 'node:zlib'
import { plainBytes, plainNames } from './dist-files.mjs'

let raw = 0
let gz = 0
for (const f of plainNames('assets/')) {
  if (!/\.(js|css)$/.test(f)) continue
  const buf = plainBytes(`assets/${f}`)
  const g = gzipSync(buf, { level: 9 }).length
  raw += buf.length
  gz += g
  console.log(`${f.padEnd(32)} ${(buf.length / 1024).toFixed(1).padStart(7)} KiB  gzip ${(g / 1024).toFixed(1).padStart(6)} KiB`)
}
console.log(`total JS+CSS: ${(raw / 1024).toFixed(1)} KiB, gzipped ${(gz / 1024).toFixed(1)} KiB`)
