import { describe, expect, it } from 'vitest'
import { DEFAULT_EVENTS, buildUrl, deliveryState, emptyFields, missingFields, newSecret, testResultText } from '../src/lib/notify'
import type { NotifyDelivery } from '../src/lib/types'

describe('the notification form builds Shoutrrr URLs', () => {
  it('ntfy with a user, a password that needs escaping, and plain HTTP', () => {
    const v = { ...emptyFields('ntfy'), host: 'ntfy.example.com:8080', topic: 'alerts', user: 'ann', password: 'p@ss/word', scheme: 'http' }
    expect(buildUrl('ntfy', v)).toBe('ntfy://ann:p%40ss%2Fword@ntfy.example.com:8080/alerts?scheme=http')
    expect(buildUrl('ntfy', { ...emptyFields('ntfy'), topic: 't' })).toBe('ntfy://ntfy.sh/t')
  })

  it('telegram keeps the bot token as user and password', () => {
    expect(buildUrl('telegram', { token: '123456:ABC-def', chats: '@ops, -100200' })).toBe('telegram://123456:ABC-def@telegram?chats=%40ops,-100200')
  })

  it('pushover, gotify and smtp', () => {
    expect(buildUrl('pushover', { token: 'tok', user: 'ukey', devices: 'phone, tablet' })).toBe('pushover://shoutrrr:tok@ukey/?devices=phone,tablet')
    expect(buildUrl('gotify', { host: 'push.example.com/sub/', token: 'Ab', scheme: 'https' })).toBe('gotify://push.example.com/sub/Ab')
    const smtp = { ...emptyFields('smtp'), host: 'smtp.example.com', port: '587', user: 'me@example.com', password: 'pw', from: 'me@example.com', to: 'a@x.org, b@y.org' }
    expect(buildUrl('smtp', smtp)).toBe('smtp://me%40example.com:pw@smtp.example.com:587/?from=me@example.com&to=a@x.org,b@y.org&encryption=auto')
  })

  it('a webhook URL gets generic+, pasted Discord and Slack URLs go as they are', () => {
    expect(buildUrl('webhook', { url: 'https://hooks.example.com/x' })).toBe('generic+https://hooks.example.com/x')
    expect(buildUrl('discord', { webhook: 'https://discord.com/api/webhooks/1/t' })).toBe('https://discord.com/api/webhooks/1/t')
  })

  it('a Slack bot token and channel become slack://xoxb:TOKEN@CHANNEL', () => {
    expect(buildUrl('slack-bot', { token: 'xoxb-1234-5678-abcd', channel: 'C0123456' })).toBe('slack://xoxb:1234-5678-abcd@C0123456')
    expect(missingFields('slack-bot', emptyFields('slack-bot'))).toEqual(['token', 'channel'])
  })

  it('names the fields still empty, never the optional ones or selects', () => {
    expect(missingFields('smtp', emptyFields('smtp'))).toEqual(['host', 'port', 'from', 'to'])
    expect(missingFields('ntfy', { ...emptyFields('ntfy'), host: 'h', topic: 't' })).toEqual([])
  })
})

describe('events, secrets and results', () => {
  it('the default events are trouble only', () => {
    expect(DEFAULT_EVENTS).not.toContain('action.succeeded')
    expect(DEFAULT_EVENTS).not.toContain('window.changed')
    expect(DEFAULT_EVENTS).toHaveLength(6)
  })

  it('a new secret is whsec_ and base64 of 32 bytes', () => {
    const s = newSecret(() => new Uint8Array(32).fill(1))
    expect(s).toBe(`whsec_${btoa('\x01'.repeat(32))}`)
    expect(atob(newSecret().slice(6))).toHaveLength(32)
  })

  it('test results and deliveries read as words', () => {
    expect(testResultText({ ok: true, status: 204, error: null })).toBe('Delivered (HTTP 204)')
    expect(testResultText({ ok: false, status: 404, error: 'the service answered 404 (not retried)' })).toContain('Failed: the service answered 404')
    const d: NotifyDelivery = { id: 1, event: 'action.failed', at: '', ok: null, attempts: 2, status: 503, error: 'x', count: 1, channel_id: 1 }
    expect(deliveryState(d)).toEqual({ label: 'retrying (2 tried)', cls: 'warn' })
    expect(deliveryState({ ...d, ok: false }).cls).toBe('fail')
  })
})
