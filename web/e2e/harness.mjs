// The e2e harness: starts the real DockNap binary against the real Docker
// Engine, a compose project of its own, and Debian's Chromium; always cleans
// up what it created, even on failure or Ctrl-C.
import { spawn, execFile } from 'node:child_process'
import { mkdtempSync, mkdirSync, openSync, rmSync, writeFileSync, closeSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const pexec = promisify(execFile)

export const ARTIFACTS = new URL('./artifacts/', import.meta.url).pathname
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic',
]

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms))
}

export async function run(cmd, args, opts = {}) {
  const { stdout } = await pexec(cmd, args, { maxBuffer: 16 << 20, timeout: opts.timeout ?? 120_000, ...opts })
  return stdout.trim()
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.unref()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

export async function waitFor(fn, { timeout = 15_000, interval = 150, what = 'condition' } = {}) {
  const end = Date.now() + timeout
  let last
  while (Date.now() < end) {
    try {
      const v = await fn()
      if (v) return v
    } catch (e) {
      last = e
    }
    await sleep(interval)
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`)
}

export class Server {
  constructor({ bin, port, dataDir, password, logPath, env = {} }) {
    Object.assign(this, { bin, port, dataDir, password, logPath, env })
    this.base = `http://127.0.0.1:${port}`
    this.proc = null
  }

  async start() {
    const fd = openSync(this.logPath, 'a')
    this.proc = spawn(this.bin, [], {
      env: {
        ...process.env,
        DOCKNAP_LISTEN: `127.0.0.1:${this.port}`,
        DOCKNAP_DATA_DIR: this.dataDir,
        DOCKNAP_ADMIN_PASSWORD: this.password,
        DOCKNAP_SECURE_COOKIE: 'false',
        DOCKNAP_LOG: process.env.DOCKNAP_LOG ?? 'info',
        ...this.env,
      },
      stdio: ['ignore', fd, fd],
    })
    closeSync(fd)
    const proc = this.proc
    let exited = null
    proc.once('exit', (code, sig) => { exited = `exit ${code ?? sig}` })
    await waitFor(async () => {
      if (exited) throw new Error(`server ended at start-up (${exited}); see ${this.logPath}`)
      const r = await fetch(`${this.base}/healthz`)
      return r.ok
    }, { timeout: 20_000, what: 'the server to answer /healthz' })
  }

  async stop() {
    const p = this.proc
    if (!p || p.exitCode !== null || p.signalCode !== null) return
    const done = new Promise((r) => p.once('exit', r))
    p.kill('SIGTERM')
    const t = setTimeout(() => p.kill('SIGKILL'), 5000)
    await done
    clearTimeout(t)
    this.proc = null
  }

  killNow() {
    try { this.proc?.kill('SIGKILL') } catch { /* gone */ }
  }

  async api(method, path, body, token) {
    const headers = { Accept: 'application/json' }
    if (body !== undefined) headers['Content-Type'] = 'application/json'
    if (token) headers.Authorization = `Bearer ${token}`
    const r = await fetch(this.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    const text = await r.text()
    const data = text ? JSON.parse(text) : null
    if (!r.ok) throw new Error(`${method} ${path} → ${r.status} ${text}`)
    return data
  }

  async token(username, password) {
    return (await this.api('POST', '/api/auth/login', { username, password })).token
  }
}

export class ComposeProject {
  constructor({ compose, image, name, dir }) {
    Object.assign(this, { compose, image, name, dir })
    this.file = join(dir, 'compose.yaml')
  }

  async up() {
    const cmd = JSON.stringify(['sh', '-c', "trap 'exit 0' TERM; while :; do sleep 0.2; done"])
    // web says something at start, in colour and on stderr, for the log viewer's test.
    const talk = "printf 'web \\033[32mready\\033[0m\\n'; echo 'warn: a line on stderr' >&2; "
    const web = JSON.stringify(['sh', '-c', `${talk}trap 'exit 0' TERM; while :; do sleep 0.2; done`])
    writeFileSync(this.file, [
      'services:',
      '  web:',
      `    image: ${this.image}`,
      `    command: ${web}`,
      '    stop_grace_period: 2s',
      '  worker:',
      `    image: ${this.image}`,
      `    command: ${cmd}`,
      '    stop_grace_period: 2s',
      '    depends_on: [web]',
      '',
    ].join('\n'))
    await run(this.compose, ['-p', this.name, '-f', this.file, 'up', '-d', '--wait'], { timeout: 120_000 })
  }

  async down() {
    await run(this.compose, ['-p', this.name, '-f', this.file, 'down', '-t', '0', '-v', '--remove-orphans'], { timeout: 120_000 })
  }

  container(service) {
    return `${this.name}-${service}-1`
  }
}

/** Many one-container "stacks", made with plain docker run (much faster than compose). */
export async function createBenchStacks({ image, prefix, count, label, concurrency = 8 }) {
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(2, '0')}`)
  let next = 0
  async function worker() {
    while (next < names.length) {
      const n = names[next++]
      await run('docker', [
        'run', '-d', '--name', `${n}-svc-1`,
        '--label', `com.docker.compose.project=${n}`, '--label', 'com.docker.compose.service=svc',
        '--label', label,
        image, 'sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1; done",
      ])
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return names
}

export async function removeLabelled(label) {
  const ids = (await run('docker', ['ps', '-aq', '--filter', `label=${label}`])).split(/\s+/).filter(Boolean)
  if (ids.length) await run('docker', ['rm', '-f', '-v', ...ids], { timeout: 120_000 })
  return ids.length
}

export function makeTempDirs(tag) {
  const root = mkdtempSync(join(tmpdir(), `docknap-e2e-${tag}-`))
  const data = join(root, 'data')
  const compose = join(root, 'compose')
  mkdirSync(data)
  mkdirSync(compose)
  return { root, data, compose, remove: () => rmSync(root, { recursive: true, force: true }) }
}

/** The test OpenID provider (tests/oidc/provider.mjs, npm oidc-provider) on a loopback port. */
export async function startOidcProvider({ redirectUri }) {
  const dir = new URL('../../tests/oidc/', import.meta.url).pathname
  const proc = spawn(process.execPath, ['provider.mjs'], {
    cwd: dir, env: { ...process.env, PORT: '0', REDIRECT_URI: redirectUri }, stdio: ['ignore', 'pipe', 'ignore'],
  })
  const issuer = await new Promise((resolve, reject) => {
    let out = ''
    proc.stdout.on('data', (d) => {
      out += d
      const m = /^ready (\S+)/m.exec(out)
      if (m) resolve(m[1])
    })
    proc.once('exit', (code) => reject(new Error(`the OpenID provider ended (exit ${code}); run scripts/test-env.sh to install tests/oidc`)))
  })
  return {
    issuer,
    stop: () => new Promise((r) => { if (proc.exitCode !== null) r(); else { proc.once('exit', r); proc.kill('SIGTERM') } }),
  }
}
