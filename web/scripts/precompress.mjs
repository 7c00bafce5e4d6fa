// Writes `<file>.br` and `<file>.gz` in place of every text file in dist/
// (after `vite build`), so the binary embeds them and sends the smallest one
// the browser accepts without compressing anything at run time (src/ui.rs).
// A variant is written only when it is smaller than the file itself; the
// file itself is kept only when no gzip copy is (the server inflates the
// gzip copy for a client that accepts no encoding).
import { readFileSync, readdirSync, statSync, writeFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { brotliCompressSync, gzipSync, constants } from 'node:zlib'

const dist = fileURLToPath(new URL('../dist/', import.meta.url))
const COMPRESSIBLE = /\.(html|js|mjs|css|svg|json|txt|map|webmanifest)$/

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? walk(path) : [path]
  })
}

let raw = 0
let br = 0
let gz = 0
for (const path of walk(dist)) {
  if (!COMPRESSIBLE.test(path)) continue
  const data = readFileSync(path)
  const variants = {
    br: brotliCompressSync(data, {
      params: {
        [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
      },
    }),
    // node's gzip header carries no timestamp: the output is reproducible.
    gz: gzipSync(data, { level: 9 }),
  }
  raw += data.length
  for (const [ext, out] of Object.entries(variants)) {
    const target = `${path}.${ext}`
    if (out.length < data.length) {
      writeFileSync(target, out)
    } else {
      rmSync(target, { force: true })
    }
    if (ext === 'br') br += Math.min(out.length, data.length)
    else gz += Math.min(out.length, data.length)
  }
  // The plain copy is not embedded when a gzip one exists: the server
  // inflates that for the rare client that takes no encoding.
  if (variants.gz.length < data.length) rmSync(path)
}
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`
console.log(`precompressed dist/: ${kib(raw)} → brotli ${kib(br)}, gzip ${kib(gz)}`)
