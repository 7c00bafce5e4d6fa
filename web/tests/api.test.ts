import { describe, expect, it, vi } from 'vitest'
import { ApiError, Client, errorFromResponse, formatWait, parseRetryAfter } from '../src/lib/api'

function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  })
}

function client(responder: (url: string, init?: RequestInit) => Response | Promise<Response>, onUnauthorized = vi.fn()) {
  const fetch = vi.fn(async (url: string, init?: RequestInit) => responder(url, init))
  return { c: new Client({ fetch, onUnauthorized }), fetch, onUnauthorized }
}

describe('API client', () => {
  it('sends JSON with the session cookie and no Authorization header', async () => {
    const { c, fetch } = client(() => json(200, { token: 't', expires_at: 'x', user: { id: 1, username: 'a', role: 'admin' } }))
    const r = await c.login('a', 'secret-pass')
    expect(r.user.role).toBe('admin')
    const [url, init] = fetch.mock.calls[0]!
    expect(url).toBe('/api/auth/login')
    expect(init?.method).toBe('POST')
    expect(init?.credentials).toBe('same-origin')
    expect(JSON.parse(String(init?.body))).toEqual({ username: 'a', password: 'secret-pass' })
    const headers = init?.headers as Record<string, string>
    expect(headers['Content-Type']).toBe('application/json')
    expect(Object.keys(headers).map((h) => h.toLowerCase())).not.toContain('authorization')
  })

  it('turns the error shape into an ApiError with code and message', async () => {
    const { c } = client(() => json(400, { error: { code: 'invalid_cron', message: 'minute 61 is out of range 0-59' } }))
    const err = await c.cronPreview('61 * * * *').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err).toMatchObject({ status: 400, code: 'invalid_cron', message: 'minute 61 is out of range 0-59' })
  })

  it('falls back to a readable message for a body that is not the error shape', async () => {
    const { c } = client(() => new Response('<html>bad gateway</html>', { status: 502 }))
    const err = (await c.stacks().catch((e: unknown) => e)) as ApiError
    expect(err.code).toBe('http_502')
    expect(err.message).toMatch(/HTTP 502/)
  })

  it('reports a network failure as status 0', async () => {
    const { c } = client(() => { throw new TypeError('Failed to fetch') })
    const err = (await c.stacks().catch((e: unknown) => e)) as ApiError
    expect(err.status).toBe(0)
    expect(err.code).toBe('network_error')
  })

  it('calls onUnauthorized for a 401 on a normal request', async () => {
    const { c, onUnauthorized } = client(() => json(401, { error: { code: 'unauthorized', message: 'not signed in' } }))
    await expect(c.stacks()).rejects.toMatchObject({ status: 401 })
    expect(onUnauthorized).toHaveBeenCalledTimes(1)
  })

  it('does not treat a failed login or the me probe as a lost session', async () => {
    const { c, onUnauthorized } = client(() => json(401, { error: { code: 'invalid_credentials', message: 'wrong' } }))
    await expect(c.login('a', 'b')).rejects.toMatchObject({ code: 'invalid_credentials' })
    await expect(c.me()).rejects.toMatchObject({ status: 401 })
    expect(onUnauthorized).not.toHaveBeenCalled()
  })

  it('reads Retry-After on a 429', async () => {
    const { c } = client(() => json(429, { error: { code: 'rate_limited', message: 'too many attempts' } }, { 'Retry-After': '840' }))
    const err = (await c.login('a', 'b').catch((e: unknown) => e)) as ApiError
    expect(err.status).toBe(429)
    expect(err.retryAfter).toBe(840)
  })

  it('handles 204 No Content', async () => {
    const { c } = client(() => new Response(null, { status: 204 }))
    await expect(c.logout()).resolves.toBeUndefined()
    await expect(c.deleteSchedule(3)).resolves.toBeUndefined()
  })

  it('encodes names in paths and builds query strings without empty values', async () => {
    const { c, fetch } = client(() => json(200, { entries: [], next_before: null }))
    await c.audit({ limit: 50, before: null, actor: '', target_id: 'a b/c', ok: false })
    expect(fetch.mock.calls[0]![0]).toBe('/api/audit?limit=50&target_id=a+b%2Fc&ok=false')
    const r = client(() => json(200, { ok: true, results: [] }))
    await r.c.act('stack', 'we/ird name', 'stop')
    expect(r.fetch.mock.calls[0]![0]).toBe('/api/stacks/we%2Fird%20name/stop')
    await r.c.act('container', 'db', 'unpause')
    expect(r.fetch.mock.calls[1]![0]).toBe('/api/containers/db/unpause')
  })

  it('asks for upcoming fires until a time', async () => {
    const { c, fetch } = client(() => json(200, []))
    await c.upcoming(1000, new Date('2026-01-02T03:04:05Z'), 200)
    expect(fetch.mock.calls[0]![0]).toBe('/api/schedules/upcoming?limit=1000&until=2026-01-02T03%3A04%3A05.000Z&per_schedule=200')
  })

  it('omits an empty time zone from the preview body', async () => {
    const { c, fetch } = client(() => json(200, { next: [] }))
    await c.cronPreview('0 23 * * *', '')
    expect(JSON.parse(String(fetch.mock.calls[0]![1]?.body))).toEqual({ cron: '0 23 * * *', count: 5 })
  })
})

describe('errorFromResponse and waits', () => {
  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('30')).toBe(30)
    expect(parseRetryAfter(null)).toBeNull()
    expect(parseRetryAfter('soon')).toBeNull()
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:02:00 GMT', now)).toBe(120)
  })

  it('keeps the fallback message for an empty body', async () => {
    const e = await errorFromResponse(new Response(null, { status: 403 }))
    expect(e.code).toBe('http_403')
    expect(e.message).toMatch(/not allowed/)
  })

  it('formats waits for people', () => {
    expect(formatWait(5)).toBe('5 s')
    expect(formatWait(60)).toBe('1 min')
    expect(formatWait(843)).toBe('14 min 3 s')
    expect(formatWait(7260)).toBe('2 h 1 min')
  })

  it('sends dry runs, overrides, previews and bulk actions as the contract says', async () => {
    const { c, fetch } = client(() => json(200, {}))
    await c.createWindow({ spec: 'always' }, true)
    await c.createSchedule({ cron: '0 1 * * *' }, true)
    await c.updateSchedule(4, { cron: '0 1 * * *' }, true)
    await c.setOverride(3, 'up', new Date('2026-01-01T10:00:00Z'))
    await c.setOverride(3, 'down')
    await c.clearOverride(3)
    await c.windowPreview({ spec: 'Mon 09:00-10:00', timezone: '', count: 3 })
    await c.bulk('stop', [{ target_type: 'stack', target_id: 'web' }])
    const calls = fetch.mock.calls.map(([url, init]) => [init?.method, url, init?.body ? JSON.parse(String(init.body)) : undefined])
    expect(calls).toEqual([
      ['POST', '/api/windows?dry_run=true', { spec: 'always' }],
      ['POST', '/api/schedules?dry_run=true', { cron: '0 1 * * *' }],
      ['PUT', '/api/schedules/4?dry_run=true', { cron: '0 1 * * *' }],
      ['POST', '/api/windows/3/override', { desired: 'up', until: '2026-01-01T10:00:00.000Z' }],
      ['POST', '/api/windows/3/override', { desired: 'down' }],
      ['DELETE', '/api/windows/3/override', undefined],
      ['POST', '/api/windows/preview', { spec: 'Mon 09:00-10:00', count: 3 }],
      ['POST', '/api/bulk', { action: 'stop', targets: [{ target_type: 'stack', target_id: 'web' }] }],
    ])
  })
})
