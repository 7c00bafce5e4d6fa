// dist/ as scripts/precompress.mjs leaves it: a text file is kept as its
// `.br` and `.gz` copies only, or plain when compressing did not shrink it.
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'

export const dist = new URL('../dist/', import.meta.url)

/** The plain bytes of `rel`, a path under dist/. */
export function plainBytes(rel) {
  const url = new URL(rel, dist)
  return existsSync(url) ? readFileSync(url) : gunzipSync(readFileSync(new URL(`${rel}.gz`, dist)))
}

/** The files of the folder `dir` under dist/ (`assets/`), each once by its plain name, sorted. */
export function plainNames(dir) {
  return [...new Set(readdirSync(new URL(dir, dist)).map((f) => f.replace(/\.(br|gz)$/, '')))].sort()
}
