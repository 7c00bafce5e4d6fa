// End-to-end tests: the real release binary, the real Docker Engine, Debian's
// Chromium. Run from web/: DOCKNAP_BIN=... DOCKNAP_COMPOSE=... DOCKNAP_TEST_IMAGE=... node e2e/run.mjs
// Prints "N passed, M failed" last; exits non-zero on any failure.
import { createHmac } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import {
  ARTIFACTS, CHROMIUM_ARGS, ComposeProject, Server, createBenchStacks, freePort, makeTempDirs, removeLabelled, run,
  sleep, startOidcProvider, waitFor,
} from './harness.mjs'

const BIN = process.env.DOCKNAP_BIN
const COMPOSE = process.env.DOCKNAP_COMPOSE
const IMAGE = process.env.DOCKNAP_TEST_IMAGE
const PASSWORD = 'e2e-admin-password-long'
const XSS = '<img src=x onerror=alert(1)>'
const RUN_ID = `e2e-${process.pid}`
const BENCH_LABEL = `docknap.e2e.run=${RUN_ID}`
const TEST_TIMEOUT = 90_000
// axe-core, evaluated in each page through the DevTools protocol (which the page's CSP does not govern)
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']
// E2E_ONLY=regex runs only the tests whose names match (for development; a full run is the gate)
const ONLY = process.env.E2E_ONLY ? new RegExp(process.env.E2E_ONLY, 'i') : null

if (!BIN || !COMPOSE || !IMAGE) {
  console.error('e2e: set DOCKNAP_BIN (release binary), DOCKNAP_COMPOSE (compose v2 binary) and DOCKNAP_TEST_IMAGE (local busybox image)')
  console.log('0 passed, 1 failed')
  process.exit(2)
}
mkdirSync(ARTIFACTS, { recursive: true })

const tmp = makeTempDirs(RUN_ID)
const project = new ComposeProject({ compose: COMPOSE, image: IMAGE, name: RUN_ID, dir: tmp.compose })
let server
let browser
let cleaning = null

async function cleanup() {
  cleaning ??= (async () => {
    const step = async (what, fn) => {
      try { await fn() } catch (e) { console.error(`cleanup: ${what}: ${e.message}`) }
    }
    await step('browser', async () => browser?.close())
    await step('compose project', () => project.down())
    await step('bench containers', () => removeLabelled(BENCH_LABEL))
    await step('server', async () => server?.stop())
    await step('temp dir', async () => tmp.remove())
  })()
  return cleaning
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    console.error(`e2e: ${sig}, cleaning up`)
    server?.killNow()
    void cleanup().finally(() => process.exit(130))
  })
}

// ---- tiny runner -------------------------------------------------------------
const tests = []
const test = (name, fn, opts = {}) => tests.push({ name, fn, timeout: opts.timeout ?? TEST_TIMEOUT })
const notes = []

function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`)
}

const base = () => server.base
// Every page is watched for CSP violations and uncaught errors; a test at the end reports them.
const browserProblems = []
async function newContext(opts = {}) {
  const ctx = await browser.newContext({
    baseURL: base(), viewport: { width: 1280, height: 860 }, locale: 'en-GB', timezoneId: 'America/New_York',
    colorScheme: 'light', ...opts,
  })
  ctx.on('console', (m) => {
    if (/Content Security Policy|Refused to (execute|apply|load)/i.test(m.text())) browserProblems.push(`CSP: ${m.text()}`)
  })
  ctx.on('weberror', (e) => browserProblems.push(`page error: ${e.error().message}`))
  return ctx
}
async function login(page, username, password) {
  await page.goto('/login')
  await page.fill('#login-user', username)
  await page.fill('#login-pass', password)
  await page.click('[data-testid=login-submit]')
  await page.waitForURL((u) => !u.pathname.startsWith('/login'), { timeout: 10_000 })
}
async function visibleText(page, selector, text, timeout = 15_000) {
  await page.locator(selector).filter({ hasText: text }).first().waitFor({ state: 'visible', timeout })
}
async function noHorizontalScroll(page) {
  return page.evaluate(() => {
    const d = document.documentElement
    return { scroll: d.scrollWidth, client: d.clientWidth, ok: d.scrollWidth <= d.clientWidth }
  })
}
async function navigate(page, linkText) {
  // client-side navigation through the main nav (opens the phone menu if needed)
  const menu = page.locator('.menu-btn')
  if (await menu.isVisible()) await menu.click()
  await page.locator('#main-nav a', { hasText: linkText }).first().click()
}
// RFC 6238 (HMAC-SHA1, 6 digits, 30 s) from a base32 key, computed here, not asked of the server
function totpCode(base32, step = Math.floor(Date.now() / 30_000)) {
  let bits = ''
  for (const c of base32.replace(/=+$/, '')) bits += 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'.indexOf(c).toString(2).padStart(5, '0')
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)))
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(step))
  const d = createHmac('sha1', key).update(counter).digest()
  const o = d[19] & 0xf
  return String((d.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0')
}
async function axeViolations(page) {
  await page.evaluate(AXE_SOURCE)
  return page.evaluate(async (tags) => {
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] })
    return r.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)
  }, AXE_TAGS)
}
const actionLabels = /^(Start|Stop|Restart|Pause|Unpause|Delete|Run now|Edit|New schedule|Add schedule|Reset password|Create user|Create schedule|New window|Edit window|Clear override|\+1 h|\+4 h|until next boundary)$/

// shared state between tests
const S = { admin: null, adminPage: null, adminToken: null, viewer: null, scheduleId: null, windowId: null, ghostWindowId: null }

// ---- tests -------------------------------------------------------------------

test('login: wrong password gives a clear error', async () => {
  const ctx = await newContext()
  const page = await ctx.newPage()
  await page.goto('/')
  await page.waitForURL(/\/login/)
  await page.fill('#login-user', 'admin')
  await page.fill('#login-pass', 'not-the-password')
  await page.click('[data-testid=login-submit]')
  await visibleText(page, '[data-testid=login-error]', 'Wrong username or password')
  await page.screenshot({ path: join(ARTIFACTS, 'login-light.png') })
  await ctx.close()
})

test('log in as admin and see the compose stack made by the test', async () => {
  S.admin = await newContext()
  const page = (S.adminPage = await S.admin.newPage())
  page.on('pageerror', (e) => console.error(`  page error: ${e.message}`))
  await login(page, 'admin', PASSWORD)
  const card = page.locator(`[data-testid=stack-card][data-stack="${project.name}"]`)
  await card.waitFor({ timeout: 15_000 })
  await visibleText(page, `[data-testid=stack-card][data-stack="${project.name}"] [data-testid=status]`, 'running')
  await visibleText(page, `[data-testid=stack-card][data-stack="${project.name}"] [data-testid=stack-count]`, '2/2 running')
  // the session is the HttpOnly cookie only: nothing in web storage, nothing readable by script
  const store = await page.evaluate(() => ({
    local: Object.keys(localStorage), session: Object.keys(sessionStorage), cookie: document.cookie,
  }))
  assert(store.local.every((k) => k === 'docknap-theme') && store.session.length === 0, `web storage holds ${JSON.stringify(store)}`)
  assert(!store.cookie.includes('docknap_session'), 'session cookie readable by script')
  const cookies = await S.admin.cookies()
  const c = cookies.find((x) => x.name === 'docknap_session')
  assert(c && c.httpOnly && c.sameSite === 'Strict', `session cookie flags: ${JSON.stringify(c)}`)
  S.adminToken = await server.token('admin', PASSWORD)
})

test('logs and resources: live figures on the stack page; the log in colour, searched, followed', async () => {
  const page = S.adminPage
  await page.goto(`/stacks/${project.name}`)
  await page.locator('[data-testid=stats-cpu]').filter({ hasText: '%' }).waitFor({ timeout: 15_000 })
  await page.locator('[data-testid=stack-logs]').click()
  await page.waitForURL(new RegExp(`/logs/stacks/${project.name}$`))
  const ready = page.locator('[data-testid=log-line]').filter({ hasText: 'web ready' }).first()
  await ready.waitFor({ timeout: 15_000 })
  assert((await ready.locator('.ansi-fg-2').textContent()) === 'ready', 'the ANSI green word is a styled span')
  assert((await ready.textContent()).includes(project.container('web')), 'a stack log names each line\'s container')
  const warn = page.locator('[data-testid=log-line].stderr').filter({ hasText: 'warn: a line on stderr' }).first()
  assert((await warn.locator('.log-err').textContent()) === 'err', 'stderr is marked in words, not colour only')

  await page.locator('[data-testid=log-search]').fill('WARN:')
  await visibleText(page, '[data-testid=log-note]', 'matching')
  const matching = await page.locator('[data-testid=log-line]').allTextContents()
  assert(matching.length >= 1 && matching.every((t) => t.includes('warn:')), `search shows only matches: ${matching}`)
  await page.locator('[data-testid=log-search]').fill('')

  await page.locator('[data-testid=log-follow]').check()
  await page.locator('[data-testid=log-load]').click()
  await visibleText(page, '[data-testid=log-note]', 'Following')
  await run('docker', ['exec', project.container('web'), 'sh', '-c', 'echo printed-while-following > /proc/1/fd/1'])
  await page.locator('[data-testid=log-line]').filter({ hasText: 'printed-while-following' }).waitFor({ timeout: 15_000 })
  // The next test starts from the dashboard.
  await page.goto('/')
  await page.locator(`[data-testid=stack-card][data-stack="${project.name}"]`).waitFor()
})

test('stop the stack from the UI with confirmation; status changes live, no reload', async () => {
  const page = S.adminPage
  await page.evaluate(() => { window.__e2eSamePage = true })
  await page.locator(`[data-testid=stack-card][data-stack="${project.name}"] a.name`).click()
  await page.waitForURL(new RegExp(`/stacks/${project.name}$`))
  await visibleText(page, '[data-testid=stack-status]', 'running')
  await page.locator('.page-head').getByRole('button', { name: `Stop stack ${project.name}`, exact: true }).click()
  const dlg = page.locator('[data-testid=confirm-dialog]')
  await dlg.waitFor({ state: 'visible' })
  assert((await dlg.textContent()).includes(`Stop stack ${project.name}?`), 'confirm dialog names the stack')
  await page.screenshot({ path: join(ARTIFACTS, 'confirm-stop-light.png') })
  await page.click('[data-testid=confirm-ok]')
  await visibleText(page, '[data-testid=stack-status]', 'stopped', 30_000)
  await visibleText(page, '[data-testid=toast]', `Stopped stack ${project.name}`)
  const states = await page.locator('[data-testid=container-row] [data-testid=status]').allTextContents()
  assert(states.length === 2 && states.every((s) => s === 'exited'), `container states ${states}`)
  // a change made outside DockNap arrives by the event stream
  await run('docker', ['start', project.container('web')])
  await visibleText(page, '[data-testid=stack-status]', 'partial', 20_000)
  await visibleText(page, `[data-container="${project.container('web')}"] [data-testid=status]`, 'running')
  // start it again from the UI (no confirmation for a start)
  await page.locator('.page-head').getByRole('button', { name: `Start stack ${project.name}`, exact: true }).click()
  await visibleText(page, '[data-testid=stack-status]', 'running', 30_000)
  assert(await page.evaluate(() => window.__e2eSamePage === true), 'the page was reloaded')
})

test('stacks list: search and status filter, standalone containers listed', async () => {
  const page = S.adminPage
  await navigate(page, 'Stacks')
  await page.fill('[data-testid=stack-search]', project.name)
  await waitFor(async () => {
    const rows = await page.locator('[data-testid=stack-row]').evaluateAll((els) => els.map((e) => e.getAttribute('data-stack')))
    return rows.length === 1 && rows[0] === project.name
  }, { what: 'search to leave only the test stack' })
  await page.selectOption('[data-testid=stack-status-filter]', 'stopped')
  await page.locator(`[data-testid=stack-row][data-stack="${project.name}"]`).waitFor({ state: 'detached' })
  await page.selectOption('[data-testid=stack-status-filter]', 'running')
  await page.locator(`[data-testid=stack-row][data-stack="${project.name}"]`).waitFor()
  assert(new URL(page.url()).searchParams.get('status') === 'running', 'filter kept in the URL')
  await page.locator('[data-testid=standalone]').waitFor()
  await page.selectOption('[data-testid=stack-status-filter]', '')
  await page.fill('[data-testid=stack-search]', '')
})

test('schedule editor: presets, live cron errors, preview in both zones, then list and timeline', async () => {
  const page = S.adminPage
  await navigate(page, 'Schedules')
  await page.click('[data-testid=new-schedule]')
  await page.waitForURL(/\/schedules\/new/)
  await page.fill('[data-testid=sched-target]', project.name)
  await page.check('[data-testid=sched-action-stop]')
  await page.getByRole('button', { name: 'Weekdays at 07:00' }).click()
  assert((await page.inputValue('[data-testid=sched-cron]')) === '0 7 * * 1-5', 'preset fills the cron field')
  await visibleText(page, '[data-testid=cron-human]', 'At 07:00, Monday through Friday')
  // an invalid expression shows the server's message next to the field, before saving
  await page.fill('[data-testid=sched-cron]', '61 23 * * *')
  await page.locator('[data-testid=cron-error]').waitFor({ timeout: 5000 })
  const msg = await page.locator('[data-testid=cron-error]').textContent()
  assert(/61|minute/i.test(msg), `cron error says what is wrong: ${msg}`)
  assert(await page.locator('[data-testid=sched-cron][aria-invalid=true]').count() === 1, 'field marked invalid')
  await page.getByRole('button', { name: 'Every night at 23:00' }).click()
  await page.locator('[data-testid=cron-error]').waitFor({ state: 'detached', timeout: 5000 })
  await visibleText(page, '[data-testid=cron-human]', 'At 23:00')
  await page.selectOption('[data-testid=sched-tz]', 'Europe/Berlin')
  await visibleText(page, '[data-testid=cron-preview] th', 'In Europe/Berlin')
  await visibleText(page, '[data-testid=cron-preview] th', 'Your time (America/New_York)')
  await waitFor(async () => (await page.locator('[data-testid=cron-preview] tbody tr').count()) === 5, { what: '5 preview rows' })
  // 23:00 in Berlin is 17:00 in New York (the browser's zone here)
  await waitFor(async () => {
    const first = await page.locator('[data-testid=cron-preview] tbody tr').first().locator('td').allTextContents()
    return first[0].includes('23:00') && first[1].includes('17:00')
  }, { what: 'the preview in both zones' })
  await page.screenshot({ path: join(ARTIFACTS, 'schedule-editor-light.png'), fullPage: true })
  await page.click('[data-testid=sched-save]')
  await page.waitForURL(/\/schedules$/)
  const row = page.locator('[data-testid=schedule-row]').filter({ hasText: project.name }).filter({ hasText: '0 23 * * *' })
  await row.first().waitFor()
  assert((await row.first().textContent()).includes('Europe/Berlin'), 'row shows the zone')
  S.scheduleId = Number(await row.first().getAttribute('data-schedule-id'))
  // the timeline: one stop in the next 24 h, seven in the 7-day view
  await navigate(page, 'Dashboard')
  const lane = page.locator(`[data-testid=timeline-lane][data-lane="stack:${project.name}"]`)
  await lane.waitFor({ timeout: 10_000 })
  const marks = lane.locator('[data-testid=timeline-mark]')
  assert((await marks.count()) === 1, `24 h lane has ${await marks.count()} marks`)
  assert((await marks.first().getAttribute('data-action')) === 'stop', 'the mark is a stop')
  await page.click('[data-testid=range-7d]')
  await waitFor(async () => {
    const counts = await marks.allTextContents()
    const total = counts.reduce((n, t) => n + (/^\d+$/.test(t) ? Number(t) : 1), 0)
    return total === 7
  }, { what: '7 stops in the 7-day view' })
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-7d-light.png') })
  await page.click('[data-testid=range-24h]')
  // the stack page lists it too, with enable / disable
  await page.goto(`/stacks/${project.name}`)
  const srow = page.locator(`[data-schedule-id="${S.scheduleId}"]`)
  await srow.waitFor()
  await srow.locator('[data-testid=schedule-enabled]').uncheck()
  await visibleText(page, '[data-testid=toast]', 'Disabled schedule')
  await waitFor(async () => !(await server.api('GET', `/api/schedules/${S.scheduleId}`, undefined, S.adminToken)).enabled, { what: 'schedule disabled' })
  await srow.locator('[data-testid=schedule-enabled]').check()
  await waitFor(async () => (await server.api('GET', `/api/schedules/${S.scheduleId}`, undefined, S.adminToken)).enabled, { what: 'schedule enabled' })
})

// ---- windows and bulk actions ----
const pad2 = (n) => String(((n % 24) + 24) % 24).padStart(2, '0')

test('jobs: a sequence built in the editor (reordered), run now with its steps shown live; a run in the audit log; once at…', async () => {
  const page = S.adminPage
  const job = `e2e-job-${process.pid}`
  await run('docker', ['create', '--name', job, '--label', BENCH_LABEL, '--network', 'none', IMAGE, 'sh', '-c', 'echo nightly backup done; exit 0'])
  await waitFor(async () => (await server.api('GET', '/api/containers', undefined, S.adminToken)).some((c) => c.name === job), { what: 'the job container listed' })
  await page.goto('/schedules/new')
  await page.click('[data-testid=sched-kind-sequence]')
  const fill = async (i, action, type, target) => {
    await page.selectOption(`[data-testid=step-${i}-type]`, type)
    await page.selectOption(`[data-testid=step-${i}-action]`, action)
    await page.fill(`[data-testid=step-${i}-target]`, target)
  }
  await fill(0, 'run', 'container', job)
  await page.click('[data-testid=add-step]')
  await fill(1, 'restart', 'stack', project.name)
  // The run belongs second: move it down, with the keyboard-reachable button.
  await page.getByRole('button', { name: 'Move step 1 down' }).click()
  assert((await page.inputValue('[data-testid=step-0-target]')) === project.name, 'reordered: the stack first')
  assert((await page.inputValue('[data-testid=step-1-target]')) === job, 'reordered: the job second')
  await page.fill('[data-testid=sched-timeout]', '2m')
  await page.click('[data-testid=sched-save]')
  await page.waitForURL(/\/schedules$/)
  const row = page.locator('[data-testid=schedule-row]').filter({ hasText: 'Sequence' }).first()
  await row.waitFor()
  assert((await row.textContent()).includes(`run container ${job}`), 'the steps are listed')
  await row.getByRole('button', { name: /Run now/ }).click()
  await page.click('[data-testid=confirm-ok]')
  await row.locator('[data-testid=sequence-progress]').filter({ hasText: 'step 1/2 ok' }).waitFor({ timeout: 30_000 })
  await page.locator('.toast').filter({ hasText: 'Sequence ran: 2 steps ok' }).waitFor({ timeout: 30_000 })

  await page.goto(`/audit?action=run&target_id=${job}`)
  await visibleText(page, '[data-testid=audit-exit-code]', 'exit code 0')
  await visibleText(page, '[data-testid=audit-log-tail]', 'nightly backup done')

  // Once at…: a wall time in the schedule's zone.
  await page.goto(`/schedules/new?target_type=stack&target_id=${project.name}`)
  await page.click('[data-testid=sched-timing-at]')
  const soon = new Date(Date.now() + 86_400_000)
  const local = new Date(soon.getTime() - soon.getTimezoneOffset() * 60_000).toISOString().slice(0, 16)
  await page.fill('[data-testid=sched-at]', local)
  await page.click('[data-testid=sched-save]')
  await page.waitForURL(/\/schedules$/)
  await page.locator('[data-testid=schedule-when]').filter({ hasText: 'Once at' }).first().waitFor()
})

test('windows: create a window from the editor and see the preview in both zones', async () => {
  const page = S.adminPage
  await page.goto(`/stacks/${project.name}`)
  await page.locator('[data-testid=create-window]').click()
  await page.waitForURL(/\/windows\/new\?/)
  await page.locator('[data-testid=window-form]').waitFor()
  assert((await page.inputValue('[data-testid=win-target]')) === project.name, 'the target comes from the stack page')
  // power users: the text field drives the picker
  await page.fill('[data-testid=win-spec]', 'mon-fri 09:00-17:00, Sat 22:00-02:00')
  await waitFor(async () => (await page.locator('[data-testid=rule-row]').count()) === 2, { what: 'two picker rows from the text' })
  assert(await page.isChecked('[data-testid=rule-0-day-Fri]') && !(await page.isChecked('[data-testid=rule-0-day-Sat]')), 'Mon-Fri ticked')
  assert((await page.inputValue('[data-testid=rule-1-to]')) === '02:00', 'overnight end read')
  // the picker writes the text: every day, from an hour before now to three hours after, in UTC
  await page.locator('[data-testid=rule-remove-1]').click()
  const h = new Date().getUTCHours()
  for (const d of ['Sat', 'Sun']) await page.check(`[data-testid=rule-0-day-${d}]`)
  await page.fill('[data-testid=rule-0-from]', `${pad2(h - 1)}:00`)
  await page.fill('[data-testid=rule-0-to]', `${pad2(h + 3)}:00`)
  await page.selectOption('[data-testid=win-tz]', 'UTC')
  const spec = `Mon-Sun ${pad2(h - 1)}:00-${pad2(h + 3) === '00' ? '24' : pad2(h + 3)}:00`
  await waitFor(async () => (await page.inputValue('[data-testid=win-spec]')) === spec, { what: `the spec text to read ${spec}` })
  // the preview: next transitions in the window's zone and the browser's
  await visibleText(page, '[data-testid=window-preview] th', 'In UTC')
  await visibleText(page, '[data-testid=window-preview] th', 'Your time (America/New_York)')
  await waitFor(async () => {
    const rows = await page.locator('[data-testid=window-preview] tbody tr').allTextContents()
    return rows.length >= 2 && /down/.test(rows[0]) && rows.some((r) => /up/.test(r))
  }, { what: 'preview rows: down at the end of the hours, then up' })
  const first = await page.locator('[data-testid=window-preview] tbody tr').first().locator('td').allTextContents()
  assert(first.some((t) => t.includes(`${pad2(h + 3)}:00`)), `the first change is at ${pad2(h + 3)}:00 UTC: ${first}`)
  await page.screenshot({ path: join(ARTIFACTS, 'window-editor-light.png'), fullPage: true })
  await page.click('[data-testid=win-save]')
  await page.waitForURL(new RegExp(`/stacks/${project.name}$`))
  // (polled: once, a list read right after the create did not show it yet)
  let all = []
  const w = await waitFor(async () => {
    all = await server.api('GET', '/api/windows', undefined, S.adminToken)
    return all.find((x) => x.target_type === 'stack' && x.target_id === project.name)
  }, { timeout: 5_000, what: 'the new window in GET /api/windows' }).catch(() => undefined)
  assert(w && w.spec === spec && w.timezone === 'UTC', `window saved: ${JSON.stringify(w ?? all)}`)
  S.windowId = w.id
})

test('schedule editor: a schedule against a window shows its conflict before saving (dry run)', async () => {
  assert(S.windowId, 'the window of the previous test exists')
  const page = S.adminPage
  // label schedules come and go with other suites' containers on the shared engine: count the ones made here
  const apiMade = async () => (await server.api('GET', '/api/schedules', undefined, S.adminToken)).filter((s) => s.source === 'api').length
  const h = new Date().getUTCHours()
  // a schedule that stops the stack inside its window: the editor shows the conflict before saving, storing nothing
  const before = await apiMade()
  await page.goto(`/schedules/new?target_type=stack&target_id=${project.name}`)
  await page.check('[data-testid=sched-action-stop]')
  await page.fill('[data-testid=sched-cron]', `30 ${Number(pad2(h + 1))} * * *`)
  await page.selectOption('[data-testid=sched-tz]', 'UTC')
  await page.locator('[data-testid=dry-run] [data-testid=conflict]').first().waitFor({ timeout: 10_000 })
  await page.screenshot({ path: join(ARTIFACTS, 'schedule-conflict-light.png'), fullPage: true })
  assert(await apiMade() === before, 'the dry run stored a schedule')
})

test('stack page: window state, and an override button sets an override', async () => {
  assert(S.windowId, 'the window of the previous test exists')
  const page = S.adminPage
  await page.goto(`/stacks/${project.name}`)
  const panel = page.locator(`[data-testid=window-panel][data-target="stack:${project.name}"]`)
  await visibleText(page, '[data-testid=window-desired]', 'up')
  await visibleText(page, '[data-testid=window-state]', 'should be up')
  assert(/\d\d:\d\d/.test(await panel.locator('[data-testid=window-next]').textContent()), 'next change shown')
  await panel.locator('[data-testid=override-up-1]').click()
  await visibleText(page, '[data-testid=window-override]', 'keep up until')
  const w = await server.api('GET', `/api/windows/${S.windowId}`, undefined, S.adminToken)
  assert(w.override && w.override.desired === 'up', `override set: ${JSON.stringify(w.override)}`)
  const until = Date.parse(w.override.until) - Date.now()
  assert(until > 50 * 60_000 && until < 70 * 60_000, `override lasts about an hour (${Math.round(until / 60_000)} min)`)
  await page.screenshot({ path: join(ARTIFACTS, 'stack-window-light.png'), fullPage: true })
  await panel.locator('[data-testid=override-clear]').click()
  await visibleText(page, '[data-testid=window-override]', 'none')
  assert((await server.api('GET', `/api/windows/${S.windowId}`, undefined, S.adminToken)).override === null, 'override cleared')
  // edit it: the editor loads the window and sends only what changed
  await panel.getByRole('link', { name: `Edit window of stack ${project.name}` }).click()
  await page.waitForURL(new RegExp(`/windows/${S.windowId}/edit`))
  await waitFor(async () => (await page.inputValue('[data-testid=win-spec]')) !== 'Mon-Fri 08:00-19:00', { what: 'the window loaded into the editor' })
  await page.fill('[data-testid=win-grace]', '30m')
  await page.click('[data-testid=win-save]')
  await page.waitForURL(new RegExp(`/stacks/${project.name}$`))
  await waitFor(async () => (await server.api('GET', `/api/windows/${S.windowId}`, undefined, S.adminToken)).grace === '30m', { what: 'grace saved' })
  // the dashboard timeline draws the window's up/down bands
  await navigate(page, 'Dashboard')
  const lane = page.locator(`[data-testid=timeline-lane][data-lane="stack:${project.name}"]`)
  await lane.locator('[data-testid=timeline-band][data-desired=up]').first().waitFor({ timeout: 10_000 })
  await lane.locator('[data-testid=timeline-band][data-desired=down]').first().waitFor()
  await page.click('[data-testid=range-7d]')
  await waitFor(async () => (await lane.locator('[data-testid=timeline-band][data-desired=up]').count()) >= 7, { what: 'an up band a day in the 7-day view' })
  await page.click('[data-testid=range-24h]')
  // the windows list shows it
  await navigate(page, 'Windows')
  await page.locator(`[data-testid=window-row][data-window-id="${S.windowId}"]`).waitFor()
  // later tests stop containers by hand: no window may undo that
  await server.api('DELETE', `/api/windows/${S.windowId}`, undefined, S.adminToken)
  S.windowId = null
  // a window on a stack that does not exist, so that the window pages have something to show
  const ghost = await server.api('POST', '/api/windows', {
    target_type: 'stack', target_id: `${RUN_ID}-ghost`, spec: 'Mon-Fri 08:00-19:00', timezone: 'Europe/Berlin',
  }, S.adminToken)
  S.ghostWindowId = ghost.id
})

test('stacks page: bulk stop of two stacks shows per-target results', async () => {
  const names = await createBenchStacks({ image: IMAGE, prefix: `${RUN_ID}-k`, count: 2, label: BENCH_LABEL, concurrency: 2 })
  try {
    const page = S.adminPage
    await page.goto(`/stacks?q=${RUN_ID}-k`)
    await waitFor(async () => (await page.locator('[data-testid=stack-row]').count()) === 2, { what: 'the two bulk stacks listed' })
    await page.check('[data-testid=bulk-select-all]')
    await visibleText(page, '[data-testid=bulk-count]', '2 selected')
    await page.locator('[data-testid=bulk-bar]').getByRole('button', { name: 'Stop', exact: true }).click()
    const dlg = page.locator('[data-testid=confirm-dialog]')
    await dlg.waitFor({ state: 'visible' })
    assert(/Stop 2 targets\?/.test(await dlg.textContent()), `one confirmation naming the count: ${await dlg.textContent()}`)
    await page.click('[data-testid=confirm-ok]')
    const results = page.locator('[data-testid=bulk-result]')
    await waitFor(async () => (await results.count()) === 2, { timeout: 30_000, what: 'two per-target results' })
    const texts = await results.allTextContents()
    for (const n of names) assert(texts.some((t) => t.includes(n) && /ok/i.test(t)), `result for ${n}: ${texts}`)
    await page.screenshot({ path: join(ARTIFACTS, 'bulk-results-light.png'), fullPage: true })
    for (const n of names) {
      const st = await run('docker', ['inspect', '-f', '{{.State.Status}}', `${n}-svc-1`])
      assert(st === 'exited', `${n} is ${st}`)
    }
  } finally {
    await removeLabelled(BENCH_LABEL)
  }
})

test('a hostile target name renders as text and runs no script', async () => {
  const page = S.adminPage
  let dialogs = 0
  const onDialog = (d) => { dialogs++; void d.dismiss() }
  page.on('dialog', onDialog)
  await server.api('POST', '/api/schedules', { target_type: 'container', target_id: XSS, action: 'restart', cron: '*/30 * * * *' }, S.adminToken)
  await page.goto('/schedules')
  const cell = page.locator('[data-testid=schedule-target]').filter({ hasText: XSS })
  await cell.first().waitFor()
  assert((await cell.first().textContent()).trim() === XSS, 'target shown verbatim')
  // run it now: the failure (no such container) names the target in the toast and the audit log
  await page.locator('[data-testid=schedule-row]').filter({ hasText: XSS }).getByRole('button', { name: /Run now/ }).click()
  await visibleText(page, '[data-testid=toast]', XSS)
  await page.goto('/')
  await visibleText(page, '[data-testid=timeline-lane]', XSS)
  await visibleText(page, '[data-testid=failures]', XSS)
  await page.goto('/audit')
  await visibleText(page, '[data-testid=audit-target-cell]', XSS)
  await sleep(300)
  const imgs = await page.evaluate(() => document.querySelectorAll('img[src="x"], [onerror]').length)
  assert(imgs === 0, `found ${imgs} injected elements`)
  assert(dialogs === 0, `${dialogs} dialogs fired`)
  page.off('dialog', onDialog)
})

test('audit log: newest first, filters, per-container results', async () => {
  const page = S.adminPage
  await page.goto('/audit')
  await page.locator('[data-testid=audit-row]').first().waitFor()
  await page.fill('[data-testid=audit-target]', project.name)
  await page.fill('[data-testid=audit-actor]', 'admin')
  await page.keyboard.press('Enter')
  await waitFor(async () => {
    const t = await page.locator('[data-testid=audit-row] [data-testid=audit-target-cell]').allTextContents()
    return t.length > 0 && t.every((x) => x === project.name)
  }, { what: 'rows filtered to the stack' })
  const stopRow = page.locator('[data-testid=audit-row]').filter({ hasText: 'stop' }).filter({ hasText: `${project.container('web')}: ok` })
  await stopRow.first().waitFor()
  const times = await page.locator('[data-testid=audit-row] td:first-child span[title]').evaluateAll((els) => els.map((e) => Date.parse(e.getAttribute('title'))))
  assert(times.every((t, i) => i === 0 || times[i - 1] >= t), 'newest first')
  await page.fill('[data-testid=audit-target]', '')
  await page.fill('[data-testid=audit-actor]', '')
  await page.check('[data-testid=audit-failures]')
  await waitFor(async () => {
    const rows = await page.locator('[data-testid=audit-row]').evaluateAll((els) => els.map((e) => e.classList.contains('failed')))
    return rows.length > 0 && rows.every(Boolean)
  }, { what: 'only failures' })
  await page.screenshot({ path: join(ARTIFACTS, 'audit-failures-light.png') })
  // paging with next_before: no gaps, no repeats, still newest first
  await page.goto('/audit?limit=5')
  await waitFor(async () => (await page.locator('[data-testid=audit-row]').count()) === 5, { what: '5 rows' })
  await page.click('[data-testid=audit-more]')
  await waitFor(async () => (await page.locator('[data-testid=audit-row]').count()) === 10, { what: '10 rows after paging' })
  const ids = (await page.locator('[data-testid=audit-row]').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-audit-id')))))
  assert(ids.every((id, i) => i === 0 || ids[i - 1] > id) && new Set(ids).size === 10, `ids ${ids}`)
  const all = await server.api('GET', `/api/audit?limit=10&before=${ids[0] + 1}`, undefined, S.adminToken)
  assert(JSON.stringify(all.entries.map((e) => e.id)) === JSON.stringify(ids), 'pages join up to the first 10 entries')
})

test('a viewer sees no action buttons', async () => {
  await server.api('POST', '/api/users', { username: 'e2e-viewer', password: 'viewer-password-1', role: 'viewer' }, S.adminToken)
  S.viewer = await newContext()
  const page = await S.viewer.newPage()
  await login(page, 'e2e-viewer', 'viewer-password-1')
  for (const path of ['/', '/stacks', `/stacks/${project.name}`, '/schedules', '/windows', '/audit', '/account']) {
    await page.goto(path)
    await page.locator('main h1').first().waitFor()
    await sleep(400)
    const labels = (await page.locator('button, a.btn').allTextContents()).map((s) => s.trim()).filter((s) => actionLabels.test(s))
    assert(labels.length === 0, `${path} shows ${labels}`)
    assert(await page.locator([
      'button[data-action]', '[data-testid=schedule-enabled]', '[data-testid=new-schedule]', '[data-testid=add-schedule]',
      '[data-testid=new-window]', '[data-testid=create-window]', '[data-testid^=override-]', '[data-testid=bulk-select-all]',
      '[data-testid=bulk-select]', '[data-testid=window-enabled]',
    ].join(', ')).count() === 0, `${path} has action controls`)
  }
  await page.goto('/schedules')
  await visibleText(page, '[data-testid=schedule-row]', project.name)
  assert(await page.locator('#main-nav a', { hasText: 'Users' }).count() === 0, 'viewer sees Users')
  await page.goto('/users')
  await page.waitForURL((u) => u.pathname === '/')
  await page.goto('/schedules/new')
  await page.waitForURL((u) => u.pathname === '/')
})

test('an operator can act but sees no user admin', async () => {
  await server.api('POST', '/api/users', { username: 'e2e-operator', password: 'operator-password-1', role: 'operator' }, S.adminToken)
  const ctx = await newContext()
  const page = await ctx.newPage()
  await login(page, 'e2e-operator', 'operator-password-1')
  await page.goto(`/stacks/${project.name}`)
  await page.locator('.page-head').getByRole('button', { name: `Stop stack ${project.name}`, exact: true }).waitFor()
  await page.locator('[data-testid=add-schedule]').waitFor()
  // keyboard: Enter opens the confirmation, Escape cancels it, nothing is stopped
  await page.locator('.page-head').getByRole('button', { name: `Stop stack ${project.name}`, exact: true }).focus()
  await page.keyboard.press('Enter')
  await page.locator('[data-testid=confirm-dialog]').waitFor({ state: 'visible' })
  const focused = await page.evaluate(() => document.activeElement?.closest('dialog') !== null)
  assert(focused, 'focus moved into the dialog')
  await page.keyboard.press('Escape')
  await page.locator('[data-testid=confirm-dialog]').waitFor({ state: 'hidden' })
  await sleep(300)
  assert((await page.locator('[data-testid=stack-status]').textContent()).trim() === 'running', 'cancel left the stack running')
  assert(await page.locator('#main-nav a', { hasText: 'Users' }).count() === 0, 'operator sees Users')
  await page.goto('/users')
  await page.waitForURL((u) => u.pathname === '/')
  await ctx.close()
})

test('users: create, change role, reset password, delete', async () => {
  const page = S.adminPage
  await navigate(page, 'Users')
  await page.fill('#nu-name', 'e2e-temp')
  await page.selectOption('#nu-role', 'viewer')
  await page.fill('#nu-pass', 'temp-password-1')
  await page.getByRole('button', { name: 'Create user' }).click()
  const row = page.locator('[data-testid=user-row][data-user="e2e-temp"]')
  await row.waitFor()
  await row.locator('[data-testid=user-role]').selectOption('operator')
  await visibleText(page, '[data-testid=toast]', 'e2e-temp is now operator')
  await row.getByRole('button', { name: 'Reset password of e2e-temp' }).click()
  await page.fill('#confirm-input', 'another-password-2')
  await page.click('[data-testid=confirm-ok]')
  await visibleText(page, '[data-testid=toast]', 'Password of e2e-temp changed')
  await server.token('e2e-temp', 'another-password-2')
  await page.screenshot({ path: join(ARTIFACTS, 'users-light.png'), fullPage: true })
  await row.getByRole('button', { name: 'Delete user e2e-temp' }).click()
  await page.click('[data-testid=confirm-ok]')
  await row.waitFor({ state: 'detached' })
  const last = await server.api('GET', '/api/users', undefined, S.adminToken)
  assert(!last.some((u) => u.username === 'e2e-temp'), 'user deleted')
})

// A second host that cannot be reached: a closed loopback port. It stays for
// the page checks below (two hosts: host filter and headings), then goes.
const GONE_HOST = 'e2e-gone'
test('hosts: add a host through the form; it is listed unreachable, and the stacks page groups by host', async () => {
  const page = S.adminPage
  await navigate(page, 'Hosts')
  await page.locator('[data-testid=host-row][data-host="local"] [data-testid=host-read-only]').waitFor()
  assert((await page.locator('[data-testid=host-row][data-host="local"] button').count()) === 0, 'local has no edit or remove button')
  // the form checks the URL before asking the server
  await page.fill('[data-testid=host-name]', GONE_HOST)
  await page.fill('[data-testid=host-group]', 'e2e')
  await page.fill('[data-testid=host-url]', 'http://127.0.0.1')
  await page.click('[data-testid=host-save]')
  await visibleText(page, '#host-url-msg.error', 'tcp://host:port')
  const port = await freePort() // nothing listens on it once freePort returns
  await page.fill('[data-testid=host-url]', `tcp://127.0.0.1:${port}`)
  await page.click('[data-testid=host-save]')
  await visibleText(page, '[data-testid=toast]', `Added host ${GONE_HOST}`)
  const row = page.locator(`[data-testid=host-row][data-host="${GONE_HOST}"]`)
  await row.waitFor()
  // "connecting" first, then "unreachable" by the live stream, in words (not colour alone)
  await visibleText(page, `[data-testid=host-row][data-host="${GONE_HOST}"] [data-testid=host-status]`, 'unreachable', 30_000)
  const h = await server.api('GET', `/api/hosts/${GONE_HOST}`, undefined, S.adminToken)
  assert(h.group === 'e2e' && h.source === 'api' && h.tls === false && h.status === 'unreachable', `host ${JSON.stringify(h)}`)
  await page.screenshot({ path: join(ARTIFACTS, 'hosts-light.png'), fullPage: true })
  // edit: TLS material that is not PEM is refused next to the TLS field; a new group is saved
  await row.getByRole('button', { name: `Edit host ${GONE_HOST}` }).click()
  await visibleText(page, '#hf-h', `Edit host ${GONE_HOST}`)
  await page.check('[data-testid=host-tls-set]')
  for (const k of ['ca', 'cert', 'key']) await page.fill(`[data-testid=host-tls-${k}-pem]`, 'not a pem')
  await page.click('[data-testid=host-save]')
  await visibleText(page, '#host-tls-msg.error', /./)
  await page.check('[data-testid=host-tls-none]')
  await page.fill('[data-testid=host-group]', 'e2e-b')
  await page.click('[data-testid=host-save]')
  await visibleText(page, '[data-testid=toast]', `Saved host ${GONE_HOST}`)
  await visibleText(page, `[data-testid=host-row][data-host="${GONE_HOST}"]`, 'e2e-b')
  assert((await server.api('GET', `/api/hosts/${GONE_HOST}`, undefined, S.adminToken)).group === 'e2e-b', 'group saved')
  // with two hosts the stacks page has a host filter and a heading per host
  await navigate(page, 'Stacks')
  await page.locator(`[data-testid=host-heading][data-host="${GONE_HOST}"] [data-testid=host-unreachable]`).first().waitFor()
  await page.locator(`[data-testid=stack-row][data-stack="${project.name}"][data-host="local"]`).waitFor()
  await page.selectOption('[data-testid=host-filter]', 'group:e2e-b')
  await page.locator(`[data-testid=stack-row][data-stack="${project.name}"]`).waitFor({ state: 'detached' })
  assert(new URL(page.url()).searchParams.get('host') === 'group:e2e-b', 'host filter kept in the URL')
  await page.selectOption('[data-testid=host-filter]', 'host:local')
  await page.locator(`[data-testid=stack-row][data-stack="${project.name}"]`).waitFor()
  await page.selectOption('[data-testid=host-filter]', '')
})

test('account: change own password', async () => {
  const page = await S.viewer.newPage()
  await page.goto('/account')
  // A typo in the current password is an error on the form, not a sign-out.
  await page.fill('#pw-cur', 'not-my-password')
  await page.fill('#pw-new', 'viewer-password-2')
  await page.fill('#pw-rep', 'viewer-password-2')
  await page.getByRole('button', { name: 'Change password' }).click()
  await visibleText(page, '[role=alert]', 'The current password is wrong.')
  assert(new URL(page.url()).pathname === '/account', `left the page for ${page.url()}`)
  await page.fill('#pw-cur', 'viewer-password-1')
  await page.fill('#pw-new', 'viewer-password-2')
  await page.fill('#pw-rep', 'viewer-password-2')
  await page.getByRole('button', { name: 'Change password' }).click()
  await visibleText(page, '[data-testid=toast]', 'Password changed')
  await server.token('e2e-viewer', 'viewer-password-2')
  await page.close()
})

test('API keys: made on the account page, shown once with a copy button, used, revoked; admins see everyone\'s', async () => {
  const page = S.adminPage
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'])
  await page.goto('/account')
  await page.fill('#ak-name', 'bad name')
  await page.getByRole('button', { name: 'Create key' }).click()
  await visibleText(page, '[data-testid=api-key-form] [role=alert]', 'no spaces')
  await page.fill('#ak-name', 'e2e-ci')
  await page.selectOption('#ak-role', 'viewer')
  await page.selectOption('#ak-exp', '30')
  await page.getByRole('button', { name: 'Create key' }).click()
  const secret = page.locator('[data-testid=api-key-secret]')
  await secret.waitFor()
  const key = await secret.inputValue()
  assert(key.startsWith('dnp_'), `a dnp_ key: ${key}`)
  await page.click('[data-testid=api-key-copy]')
  await visibleText(page, '[data-testid=toast]', 'Key copied')
  assert(await page.evaluate(() => navigator.clipboard.readText()) === key, 'the copy button copies the key')
  const me = await server.api('GET', '/api/auth/me', undefined, key)
  assert(me.username === 'admin' && me.role === 'viewer', `the key works as a viewer: ${JSON.stringify(me)}`)
  const problems = []
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme })
    problems.push(...(await axeViolations(page)).map((v) => `api keys (${scheme}) ${v}`))
  }
  await page.emulateMedia({ colorScheme: 'light' })
  assert(problems.length === 0, `axe violation(s):\n    ${problems.join('\n    ')}`)
  await page.screenshot({ path: join(ARTIFACTS, 'account-api-keys-light.png'), fullPage: true })
  await page.getByRole('button', { name: 'Done' }).click()
  const row = page.locator('[data-testid=api-key-row][data-key="e2e-ci"]')
  await row.waitFor()
  assert((await row.textContent()).includes(key.slice(0, 12)), 'the prefix is listed')
  assert(!(await page.content()).includes(key.slice(12)), 'the secret is gone from the page')

  // Another user's key shows with "Everyone's keys" only.
  await server.api('POST', '/api/users', { username: 'e2e-keys', password: 'keys-password-long1', role: 'operator' }, S.adminToken)
  const otherKey = await server.api('POST', '/api/tokens', { name: 'e2e-other-bot' }, await server.token('e2e-keys', 'keys-password-long1'))
  assert(await page.locator('[data-testid=api-key-row][data-key="e2e-other-bot"]').count() === 0, 'own keys by default')
  await page.check('[data-testid=api-keys-all]')
  await page.locator('[data-testid=api-key-row][data-key="e2e-other-bot"]').waitFor()
  await page.getByRole('button', { name: 'Revoke key e2e-keys:e2e-other-bot' }).click()
  await page.click('[data-testid=confirm-ok]')
  await page.locator('[data-testid=api-key-row][data-key="e2e-other-bot"]').waitFor({ state: 'detached' })
  const gone = await server.api('GET', '/api/auth/me', undefined, otherKey.token).then(() => 'still works', (e) => e.message)
  assert(gone.includes('→ 401'), `revoked at once: ${gone}`)
  await page.uncheck('[data-testid=api-keys-all]')
  await row.getByRole('button', { name: 'Revoke key admin:e2e-ci' }).click()
  await page.click('[data-testid=confirm-ok]')
  await row.waitFor({ state: 'detached' })
})

test('two-factor: set up on the account page with the QR code, sign in with a code, admin resets it', async () => {
  await server.api('POST', '/api/users', { username: 'e2e-tfa', password: 'tfa-password-long1', role: 'operator' }, S.adminToken)
  const ctx = await newContext()
  const page = await ctx.newPage()
  await login(page, 'e2e-tfa', 'tfa-password-long1')
  await page.goto('/account')
  await page.getByRole('button', { name: 'Set up two-factor sign-in' }).click()
  const qr = page.locator('[data-testid=totp-qr]')
  await qr.waitFor()
  assert(await qr.evaluate((img) => img.complete && img.naturalWidth > 0 && img.src.startsWith('data:image/svg+xml')), 'QR code drawn locally')
  const secret = (await page.locator('[data-testid=totp-secret]').textContent()).trim()
  const problems = []
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme })
    problems.push(...(await axeViolations(page)).map((v) => `set-up (${scheme}) ${v}`))
  }
  await page.emulateMedia({ colorScheme: 'light' })
  await page.fill('#tf-code', '000000' === totpCode(secret) ? '111111' : '000000')
  await page.getByRole('button', { name: 'Turn on' }).click()
  await visibleText(page, '[role=alert]', 'That code is wrong')
  const step = Math.floor(Date.now() / 30_000)
  await page.fill('#tf-code', totpCode(secret, step))
  await page.getByRole('button', { name: 'Turn on' }).click()
  await page.locator('[data-testid=totp-recovery] li').nth(9).waitFor()
  assert(await page.locator('[data-testid=totp-recovery] li').count() === 10, 'ten recovery codes')
  await page.screenshot({ path: join(ARTIFACTS, 'account-2fa-light.png'), fullPage: true })
  await ctx.close()

  // Signing in now asks for the code; the enabling code's step is used up, the next one works.
  const ctx2 = await newContext()
  const login2 = await ctx2.newPage()
  await login2.goto('/login')
  await login2.fill('#login-user', 'e2e-tfa')
  await login2.fill('#login-pass', 'tfa-password-long1')
  await login2.click('[data-testid=login-submit]')
  const codeField = login2.locator('#login-code')
  await codeField.waitFor()
  assert(await codeField.getAttribute('autocomplete') === 'one-time-code', 'one-time-code autocomplete')
  for (const scheme of ['light', 'dark']) {
    await login2.emulateMedia({ colorScheme: scheme })
    problems.push(...(await axeViolations(login2)).map((v) => `login code (${scheme}) ${v}`))
  }
  await codeField.fill(totpCode(secret, step + 1))
  await login2.click('[data-testid=login-submit]')
  await login2.waitForURL((u) => !u.pathname.startsWith('/login'), { timeout: 10_000 })
  await ctx2.close()
  assert(problems.length === 0, `axe violation(s):\n    ${problems.join('\n    ')}`)

  const admin = S.adminPage
  await navigate(admin, 'Users')
  const row = admin.locator('[data-testid=user-row][data-user="e2e-tfa"]')
  await row.locator('[data-testid=user-totp]').filter({ hasText: 'on' }).waitFor()
  await row.getByRole('button', { name: 'Reset 2FA of e2e-tfa' }).click()
  await admin.click('[data-testid=confirm-ok]')
  await visibleText(admin, '[data-testid=toast]', 'Two-factor sign-in of e2e-tfa reset')
  await server.token('e2e-tfa', 'tfa-password-long1')
})

test('theme toggle follows the system, then is remembered', async () => {
  const ctx = await newContext({ colorScheme: 'dark' })
  const page = await ctx.newPage()
  await login(page, 'admin', PASSWORD)
  const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor)
  const dark = await bg()
  await page.click('[data-testid=theme-toggle]') // system -> light
  const light = await bg()
  assert(dark === 'rgb(17, 21, 28)', `a dark system gives the dark background, not ${dark}`)
  assert(light === 'rgb(244, 246, 250)', `the toggle gives the light background, not ${light}`)
  assert(await page.evaluate(() => document.documentElement.dataset.theme === 'light' && localStorage.getItem('docknap-theme') === 'light'), 'light stored')
  await page.reload()
  await page.locator('main h1').first().waitFor()
  assert((await bg()) === light, 'light kept after reload')
  // sign out: back to the login page, and the session is gone
  await page.click('[data-testid=logout]')
  await page.waitForURL(/\/login/)
  const me = await page.evaluate(async () => (await fetch('/api/auth/me', { credentials: 'same-origin' })).status)
  assert(me === 401, `after sign-out /api/auth/me answers ${me}`)
  await page.goto('/schedules')
  await page.waitForURL(/\/login\?next=/)
  await ctx.close()
})

test('protection: stopping a protected container asks a second time, naming the protection, then forces', async () => {
  const name = `${RUN_ID}-protected`
  await run('docker', ['run', '-d', '--name', name, '--label', 'docknap.protect=true', '--label', BENCH_LABEL, IMAGE,
    'sh', '-c', "trap 'exit 0' TERM; while :; do sleep 0.2; done"])
  try {
    const page = S.adminPage
    await page.goto(`/stacks?q=${name}`)
    await page.getByRole('button', { name: `Stop container ${name}`, exact: true }).click()
    const dlg = page.locator('[data-testid=confirm-dialog]')
    await dlg.waitFor({ state: 'visible' })
    await page.click('[data-testid=confirm-ok]')
    await waitFor(async () => /is protected/.test((await dlg.textContent()) ?? ''), { what: 'the second confirmation' })
    const text = await dlg.textContent()
    assert(/docknap\.protect=true/.test(text) && text.includes(name), `it names the protection and the container: ${text}`)
    const st = await run('docker', ['inspect', '-f', '{{.State.Status}}', name])
    assert(st === 'running', `nothing stopped before the second yes: ${st}`)
    const problems = await axeViolations(page)
    assert(problems.length === 0, `axe on the second confirmation: ${problems.join('; ')}`)
    await page.click('[data-testid=confirm-ok]')
    await waitFor(async () => (await run('docker', ['inspect', '-f', '{{.State.Status}}', name])) === 'exited', { timeout: 30_000, what: 'the forced stop' })
  } finally {
    await removeLabelled(BENCH_LABEL)
  }
})

test('labels: a schedule from container labels shows where it comes from, its error, and no edit or delete', async () => {
  const name = `${RUN_ID}-labelled`
  await run('docker', ['run', '-d', '--name', name, '--network', 'none', '--label', BENCH_LABEL,
    '--label', 'docknap.schedule.nightly.cron=0 1 * * *', '--label', 'docknap.schedule.nightly.action=stop',
    '--label', 'docknap.schedule.broken.cron=0 2 * * *', '--label', 'docknap.schedule.broken.action=explode',
    IMAGE, 'sleep', '600'])
  try {
    const page = S.adminPage
    await page.goto('/schedules')
    const rows = page.locator('tr', { hasText: name })
    await waitFor(async () => (await rows.count()) === 2, { timeout: 20_000, what: 'the two label schedules listed' })
    const origins = await page.locator('[data-testid=schedule-origin]', { hasText: name }).allTextContents()
    assert(origins.length === 2 && origins.every((t) => t.includes(`from labels of container ${name}`)), `origins: ${origins}`)
    const error = await rows.locator('[data-testid=schedule-error]').allTextContents()
    assert(error.length === 1 && /explode/.test(error[0]), `the bad one says why: ${error}`)
    for (const label of ['Edit', 'Delete']) {
      assert((await rows.getByRole(label === 'Edit' ? 'link' : 'button', { name: label, exact: true }).count()) === 0, `no ${label}`)
    }
    const problems = await axeViolations(page)
    assert(problems.length === 0, `axe: ${problems.join('; ')}`)
  } finally {
    await removeLabelled(BENCH_LABEL)
  }
})

test('backup page: export downloads, an import shows its dry-run diff before it is applied', async () => {
  const page = S.adminPage
  await page.goto('/backup')
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=export-download]')])
  const file = join(tmp.root, 'export.json')
  await download.saveAs(file)
  const doc = JSON.parse(readFileSync(file, 'utf8'))
  assert(doc.version === 2 && Array.isArray(doc.schedules), `an export document: ${JSON.stringify(doc).slice(0, 200)}`)
  await page.setInputFiles('[data-testid=import-file]', file)
  assert(await page.locator('[data-testid=import-apply]').isDisabled(), 'apply waits for a preview')
  await page.click('[data-testid=import-preview]')
  await visibleText(page, '[data-testid=import-diff]', 'Would import')
  const diff = await page.locator('[data-testid=import-diff]').textContent()
  assert(/Unchanged/.test(diff) || doc.schedules.length + doc.windows.length === 0, `the diff lists what stays: ${diff}`)
  const problems = await axeViolations(page)
  assert(problems.length === 0, `axe on the diff: ${problems.join('; ')}`)
  await page.click('[data-testid=import-apply]')
  await visibleText(page, '[data-testid=import-result]', 'Imported')
})

const PAGES = () => [
  ['dashboard', '/'],
  ['stacks', '/stacks'],
  ['stack', `/stacks/${project.name}`],
  ['schedules', '/schedules'],
  ['schedule-new', `/schedules/new?target_type=stack&target_id=${project.name}`],
  ['schedule-edit', `/schedules/${S.scheduleId}/edit`],
  ['audit', '/audit'],
  ['users', '/users'],
  ['hosts', '/hosts'],
  ['notifications', '/notifications'],
  ['backup', '/backup'],
  ['account', '/account'],
  ['logs', `/logs/stacks/${project.name}`],
  ['not-found', '/no-such-page'],
  ['windows', '/windows'],
  ['window-new', `/windows/new?target_type=stack&target_id=${project.name}`],
  ...(S.ghostWindowId ? [['window-edit', `/windows/${S.ghostWindowId}/edit`], ['window', `/windows/${S.ghostWindowId}`]] : []),
]

test('notifications: add a webhook channel from the form; Test shows the real result; deliveries listed; address never shown', async () => {
  const hits = []
  const receiver = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => { body += c })
    req.on('end', () => {
      hits.push({ url: req.url, body })
      res.statusCode = req.url.startsWith('/gone') ? 404 : 204
      res.end()
    })
  })
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  try {
    const page = S.adminPage
    await navigate(page, 'Notifications')
    await page.locator('main h1', { hasText: 'Notifications' }).waitFor()
    await page.fill('[data-testid=notify-name]', 'e2e hook')
    await page.selectOption('[data-testid=notify-service]', 'webhook')
    await page.fill('[data-testid=notify-field-url]', `http://127.0.0.1:${receiver.address().port}/in/e2e-5ecret`)
    // the default events are preselected: trouble, not successes
    assert(await page.isChecked('[data-testid="notify-event-action.failed"]'), 'action.failed preselected')
    assert(!(await page.isChecked('[data-testid="notify-event-action.succeeded"]')), 'action.succeeded not preselected')
    await page.click('[data-testid=notify-save]')
    const row = page.locator('[data-testid=notify-row][data-channel="e2e hook"]')
    await row.waitFor()
    assert(!(await page.content()).includes('5ecret'), 'the address is not shown back')
    await row.getByRole('button', { name: 'Test channel e2e hook' }).click()
    await row.locator('[data-testid=notify-test-result]').filter({ hasText: 'Delivered (HTTP 204)' }).waitFor()
    assert(hits.length === 1 && hits[0].url === '/in/e2e-5ecret', `one request to the receiver: ${JSON.stringify(hits)}`)
    assert(JSON.parse(hits[0].body).event === 'test', 'the test message')
    await row.getByRole('button', { name: 'Deliveries of channel e2e hook' }).click()
    await page.locator('[data-testid=delivery-row]').filter({ hasText: 'delivered' }).first().waitFor()
    await page.screenshot({ path: join(ARTIFACTS, 'notifications-test-light.png'), fullPage: true })
    // a channel whose endpoint refuses: the Test shows why, and the dashboard shows the failure
    await server.api('POST', '/api/notifications', { name: 'e2e gone', url: `generic+http://127.0.0.1:${receiver.address().port}/gone` }, S.adminToken)
    await page.reload()
    const gone = page.locator('[data-testid=notify-row][data-channel="e2e gone"]')
    await gone.getByRole('button', { name: 'Test channel e2e gone' }).click()
    await gone.locator('[data-testid=notify-test-result]').filter({ hasText: 'answered 404 (not retried)' }).waitFor()
    await navigate(page, 'Dashboard')
    await page.locator('[data-testid=notify-failures]').filter({ hasText: 'answered 404' }).waitFor()
  } finally {
    receiver.close()
  }
})

test('phone width (375 px): no horizontal scroll on any page', async () => {
  const ctx = await newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 })
  const page = await ctx.newPage()
  await page.goto('/login')
  await page.screenshot({ path: join(ARTIFACTS, 'login-phone.png') })
  let r = await noHorizontalScroll(page)
  assert(r.ok, `login scrolls sideways: ${r.scroll} > ${r.client}`)
  await login(page, 'admin', PASSWORD)
  const bad = []
  for (const [name, path] of PAGES()) {
    await page.goto(path)
    await page.locator('main h1').first().waitFor()
    await sleep(500)
    r = await noHorizontalScroll(page)
    if (!r.ok) bad.push(`${name} ${r.scroll}>${r.client}`)
    await page.screenshot({ path: join(ARTIFACTS, `${name}-phone.png`), fullPage: true })
  }
  await page.goto('/')
  await page.click('.menu-btn')
  await page.locator('#main-nav a', { hasText: 'Schedules' }).waitFor({ state: 'visible' })
  await page.screenshot({ path: join(ARTIFACTS, 'menu-phone.png') })
  await ctx.close()
  assert(bad.length === 0, `horizontal scroll on: ${bad.join(', ')}`)
})

test('screenshots of every page, light and dark', async () => {
  for (const scheme of ['light', 'dark']) {
    const ctx = await newContext({ colorScheme: scheme })
    const page = await ctx.newPage()
    await page.goto('/login')
    await page.screenshot({ path: join(ARTIFACTS, `login-${scheme}.png`) })
    await login(page, 'admin', PASSWORD)
    for (const [name, path] of PAGES()) {
      await page.goto(path)
      await page.locator('main h1').first().waitFor()
      await sleep(500)
      await page.screenshot({ path: join(ARTIFACTS, `${name}-${scheme}.png`), fullPage: true })
      if (scheme === 'light') {
        const unlabelled = await page.evaluate(() => {
          const bad = []
          for (const el of document.querySelectorAll('input, select, textarea, button, a[href]')) {
            if (el.type === 'hidden' || el.hidden || el.closest('[hidden]')) continue
            const name = (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || el.getAttribute('title') ||
              (el.labels && el.labels.length ? 'label' : '') || (el.matches('button, a') ? el.textContent.trim() : '') ||
              (el.closest('label') ? 'label' : '')).trim()
            if (!name) bad.push(el.outerHTML.slice(0, 80))
          }
          return bad
        })
        assert(unlabelled.length === 0, `${name}: unlabelled controls ${unlabelled.join(' | ')}`)
      }
    }
    await ctx.close()
  }
})

test('accessibility: axe finds no WCAG 2.1 A/AA violation on any page, light and dark', async () => {
  if (!S.scheduleId) {
    S.scheduleId = (await server.api('POST', '/api/schedules', { target_type: 'stack', target_id: project.name, action: 'stop', cron: '0 23 * * *' }, S.adminToken)).id
  }
  const found = []
  let pages = 0
  const check = async (page, name, scheme) => {
    await page.evaluate(AXE_SOURCE)
    const violations = await page.evaluate(async (tags) => {
      const r = await window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] })
      return r.violations.map((v) => ({
        id: v.id, help: v.help,
        nodes: v.nodes.map((n) => ({ target: n.target.join(' '), summary: (n.failureSummary ?? '').split('\n').slice(1).join(' ').trim() })),
      }))
    }, AXE_TAGS)
    pages++
    for (const v of violations) {
      found.push(`${name} (${scheme}) ${v.id}: ${v.help}\n      ${v.nodes.map((n) => `${n.target} — ${n.summary}`).join('\n      ')}`)
    }
  }
  for (const scheme of ['light', 'dark']) {
    const ctx = await newContext({ colorScheme: scheme })
    const page = await ctx.newPage()
    await page.goto('/login')
    await page.locator('#login-user').waitFor()
    await check(page, 'login', scheme)
    await login(page, 'admin', PASSWORD)
    for (const [name, path] of PAGES()) {
      await page.goto(path)
      await page.locator('main h1').first().waitFor()
      await page.locator('[data-testid=live].open').waitFor({ timeout: 5_000 }).catch(() => {})
      await sleep(600)
      await check(page, name, scheme)
    }
    await ctx.close()
  }
  notes.push(`axe (${AXE_TAGS.join(', ')}): ${pages} page views, ${found.length} violation(s)`)
  assert(found.length === 0, `${found.length} axe violation(s):\n    ${found.join('\n    ')}`)
}, { timeout: 240_000 })

test('hosts: remove the added host with confirmation; with one host left the UI names no host', async () => {
  const page = S.adminPage
  await navigate(page, 'Hosts')
  const row = page.locator(`[data-testid=host-row][data-host="${GONE_HOST}"]`)
  await row.getByRole('button', { name: `Remove host ${GONE_HOST}` }).click()
  const dlg = page.locator('[data-testid=confirm-dialog]')
  await dlg.waitFor({ state: 'visible' })
  assert((await dlg.textContent()).includes(`Remove host ${GONE_HOST}?`), 'the dialog names the host')
  await page.click('[data-testid=confirm-ok]')
  await row.waitFor({ state: 'detached' })
  await visibleText(page, '[data-testid=toast]', `Removed host ${GONE_HOST}`)
  const hosts = await server.api('GET', '/api/hosts', undefined, S.adminToken)
  assert(!hosts.some((x) => x.name === GONE_HOST), `host still listed: ${JSON.stringify(hosts)}`)
  await navigate(page, 'Stacks')
  await page.locator(`[data-testid=stack-row][data-stack="${project.name}"]`).waitFor()
  assert((await page.locator('[data-testid=host-filter], [data-testid=host-heading], [data-testid=host-label]').count()) === 0, 'host UI shown with one host')
})

test('live updates recover after a server restart and refresh the state', async () => {
  const page = S.adminPage
  await page.goto(`/stacks/${project.name}`)
  await visibleText(page, '[data-testid=stack-status]', 'running')
  await page.locator('[data-testid=live].open').waitFor({ timeout: 10_000 })
  await page.evaluate(() => { window.__e2eSamePage = true })
  await server.stop()
  await page.locator('[data-testid=live].open').waitFor({ state: 'detached', timeout: 10_000 })
  // changed while DockNap was down: only a re-fetch on reconnect can show it
  await run('docker', ['stop', '-t', '2', project.container('worker')])
  await server.start()
  await visibleText(page, `[data-container="${project.container('worker')}"] [data-testid=status]`, 'exited', 30_000)
  await visibleText(page, '[data-testid=stack-status]', 'partial')
  await page.locator('[data-testid=live].open').waitFor({ timeout: 10_000 })
  // and events flow again
  await run('docker', ['start', project.container('worker')])
  await visibleText(page, '[data-testid=stack-status]', 'running', 20_000)
  assert(await page.evaluate(() => window.__e2eSamePage === true), 'the page was reloaded')
})

test('a session revoked elsewhere sends the user back to sign in, untouched', async () => {
  const ctx = await newContext()
  const page = await ctx.newPage()
  await login(page, 'e2e-operator', 'operator-password-1')
  await page.locator('[data-testid=dashboard]').waitFor()
  const users = await server.api('GET', '/api/users', undefined, S.adminToken)
  const op = users.find((u) => u.username === 'e2e-operator')
  await server.api('PUT', `/api/users/${op.id}`, { password: 'operator-password-2' }, S.adminToken)
  // No click: the server ends the revoked session's live stream, and the
  // page finds out on its own.
  await page.waitForURL(/\/login/, { timeout: 15_000 })
  await visibleText(page, '[role=status]', 'Your session ended')
  await login(page, 'e2e-operator', 'operator-password-2')
  await ctx.close()
})

test('an unreachable Docker Engine shows a banner, the rest of the UI works', async () => {
  const tmp2 = makeTempDirs(`${RUN_ID}-nodocker`)
  const other = new Server({
    bin: BIN, port: await freePort(), dataDir: tmp2.data, password: PASSWORD, logPath: join(ARTIFACTS, 'server-nodocker.log'),
    env: { DOCKER_HOST: `unix://${tmp2.root}/no-such-docker.sock` },
  })
  try {
    await other.start()
    const ctx = await newContext({ baseURL: other.base })
    const page = await ctx.newPage()
    await login(page, 'admin', PASSWORD)
    await visibleText(page, '[data-testid=docker-banner]', 'Docker Engine is unreachable')
    await navigate(page, 'Schedules')
    await page.locator('[data-testid=new-schedule]').waitFor()
    await page.screenshot({ path: join(ARTIFACTS, 'docker-unreachable-light.png') })
    await ctx.close()
  } finally {
    await other.stop()
    tmp2.remove()
  }
})

test('single sign-on: "Sign in with …" through a real OpenID provider, and a refusal without a group', async () => {
  const tmp2 = makeTempDirs(`${RUN_ID}-oidc`)
  const port = await freePort()
  const provider = await startOidcProvider({ redirectUri: `http://127.0.0.1:${port}/api/auth/oidc/callback` })
  const other = new Server({
    bin: BIN, port, dataDir: tmp2.data, password: PASSWORD, logPath: join(ARTIFACTS, 'server-oidc.log'),
    env: {
      DOCKER_HOST: `unix://${tmp2.root}/no-such-docker.sock`,
      DOCKNAP_OIDC_ISSUER: provider.issuer,
      DOCKNAP_OIDC_CLIENT_ID: 'docknap',
      DOCKNAP_OIDC_CLIENT_SECRET: 'docknap-test-secret',
      DOCKNAP_OIDC_NAME: 'Test ID',
      DOCKNAP_OIDC_ADMIN_GROUPS: 'docknap-admins',
      DOCKNAP_OIDC_VIEWER_GROUPS: 'staff',
    },
  })
  try {
    await other.start()
    const found = []
    for (const scheme of ['light', 'dark']) {
      const ctx = await newContext({ baseURL: other.base, colorScheme: scheme })
      const page = await ctx.newPage()
      await page.goto('/login?error=no_role')
      await visibleText(page, '[data-testid=sso-login]', 'Sign in with Test ID')
      await visibleText(page, '[data-testid=sso-error]', 'no group that has access')
      found.push(...(await axeViolations(page)).map((v) => `login with SSO (${scheme}): ${v}`))
      await page.screenshot({ path: join(ARTIFACTS, `login-sso-${scheme}.png`) })
      await ctx.close()
    }
    assert(found.length === 0, `axe:\n    ${found.join('\n    ')}`)

    const signIn = async (user) => {
      const ctx = await newContext({ baseURL: other.base })
      const page = await ctx.newPage()
      await page.goto('/login')
      await page.click('[data-testid=sso-login]')
      // The provider's own login form (any password).
      await page.waitForURL((u) => u.origin === provider.issuer, { waitUntil: 'commit' })
      await page.locator('input[name=login]').fill(user)
      await page.locator('input[name=password]').fill('any-password')
      await page.locator('button[type=submit]').click()
      await page.waitForURL((u) => u.origin === other.base, { waitUntil: 'commit', timeout: 15_000 })
      return { ctx, page }
    }
    const alice = await signIn('alice')
    await alice.page.locator('main h1').first().waitFor()
    assert(!alice.page.url().includes('/login'), `alice landed on ${alice.page.url()}`)
    const me = await alice.page.evaluate(async () => (await fetch('/api/auth/me')).json())
    assert(me.username === 'alice' && me.role === 'admin', `signed in as ${JSON.stringify(me)}`)
    await alice.ctx.close()

    const mallory = await signIn('mallory')
    await visibleText(mallory.page, '[data-testid=sso-error]', 'no group that has access')
    assert(new URL(mallory.page.url()).pathname === '/login', `mallory is at ${mallory.page.url()}`)
    await mallory.ctx.close()
  } finally {
    await other.stop()
    await provider.stop()
    tmp2.remove()
  }
})

test('login rate limit shows the wait time', async () => {
  const ctx = await newContext()
  const page = await ctx.newPage()
  await page.goto('/login')
  for (let i = 0; i < 7; i++) {
    await page.fill('#login-user', 'e2e-nobody')
    await page.fill('#login-pass', `wrong-password-${i}`)
    if (await page.locator('[data-testid=login-submit]').isDisabled()) break
    await page.click('[data-testid=login-submit]')
    await page.locator('[data-testid=login-error]').waitFor()
    await sleep(100)
  }
  await visibleText(page, '[data-testid=login-error]', /Too many failed sign-in attempts\. Try again in \d+/)
  assert(await page.locator('[data-testid=login-submit]').isDisabled(), 'submit disabled while locked out')
  await page.screenshot({ path: join(ARTIFACTS, 'login-rate-limited-light.png') })
  await ctx.close()
})

test('dashboard time to interactive with 50 stacks', async () => {
  const t0 = Date.now()
  const names = await createBenchStacks({ image: IMAGE, prefix: `${RUN_ID}-b`, count: 50, label: BENCH_LABEL })
  const made = Date.now() - t0
  try {
    const ctx = await newContext()
    const page = await ctx.newPage()
    await login(page, 'admin', PASSWORD)
    await waitFor(async () => (await page.locator('[data-testid=stack-card][data-stack^="' + RUN_ID + '-b-"]').count()) === 50, { timeout: 30_000, what: '50 bench stacks on the dashboard' })
    const samples = []
    for (let i = 0; i < 3; i++) {
      const start = Date.now()
      await page.goto('/')
      await page.locator('[data-testid=dashboard][data-ready="1"]').waitFor({ timeout: 15_000 })
      await page.locator(`[data-stack="${names[49]}"]`).waitFor()
      const wall = Date.now() - start
      const mark = await page.evaluate(() => performance.getEntriesByName('docknap:dashboard-ready')[0]?.startTime ?? -1)
      const cards = await page.locator('[data-testid=stack-card]').count()
      samples.push({ mark: Math.round(mark), wall, cards })
    }
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-50-stacks-light.png') })
    await ctx.close()
    const best = samples.map((s) => s.mark).sort((a, b) => a - b)
    const median = best[1]
    const line = `dashboard time-to-interactive with 50 stacks (${samples[0].cards} stack cards): median ${median} ms from navigation start (samples ${samples.map((s) => `${s.mark} ms`).join(', ')}; wall clock incl. navigation ${samples.map((s) => `${s.wall} ms`).join(', ')}); 50 containers created in ${made} ms`
    notes.push(line)
    // measured and printed, not judged: the figure depends on the machine's load
    assert(median > 0, line)
  } finally {
    await removeLabelled(BENCH_LABEL)
  }
})

test('no CSP violation or script error in any page', async () => {
  assert(browserProblems.length === 0, browserProblems.slice(0, 5).join(' | '))
})

// ---- main --------------------------------------------------------------------
let passed = 0
let failed = 0
const started = Date.now()
try {
  const log = join(ARTIFACTS, 'server.log')
  const port = await freePort()
  server = new Server({ bin: BIN, port, dataDir: tmp.data, password: PASSWORD, logPath: log })
  console.log(`e2e: server ${BIN} on ${server.base}, compose project ${project.name}, image ${IMAGE}`)
  await Promise.all([server.start(), project.up()])
  browser = await chromium.launch({ executablePath: process.env.DOCKNAP_CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS })
  for (const t of tests) {
    if (ONLY && !ONLY.test(t.name) && !/^log in as admin/.test(t.name)) continue
    const t1 = Date.now()
    let timer
    try {
      await Promise.race([
        t.fn(),
        new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out after ${t.timeout} ms`)), t.timeout) }),
      ])
      passed++
      console.log(`✔ ${t.name} (${Date.now() - t1} ms)`)
    } catch (e) {
      failed++
      // the whole message (axe lists every violation), then where it was thrown
      const where = String(e?.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l)).slice(0, 3).map((l) => l.trim())
      console.log(`✘ ${t.name} (${Date.now() - t1} ms)\n    ${[`${e?.name ?? 'Error'}: ${e?.message ?? e}`, ...where].join('\n    ')}`)
      try {
        for (const ctx of browser.contexts()) {
          for (const [i, p] of ctx.pages().entries()) {
            await p.screenshot({ path: join(ARTIFACTS, `FAILED-${tests.indexOf(t)}-${i}.png`) }).catch(() => {})
          }
        }
      } catch { /* best effort */ }
    } finally {
      clearTimeout(timer)
    }
  }
} catch (e) {
  failed++
  console.log(`✘ set-up failed: ${e?.stack ?? e}`)
} finally {
  await cleanup()
}
for (const n of notes) console.log(n)
console.log(`e2e: screenshots in ${ARTIFACTS} · ${((Date.now() - started) / 1000).toFixed(1)} s`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed ? 1 : 0)
