// The notifications page's pure logic: a form per service that builds the
// channel's Shoutrrr URL (docs/NOTIFICATIONS.md), the event vocabulary, and
// how a delivery reads.
import type { NotifyDelivery, NotifyEvent, NotifyTestResult } from './types'

export const EVENTS: { event: NotifyEvent; label: string }[] = [
  { event: 'action.failed', label: 'An action failed (manual, scheduled, bulk or window)' },
  { event: 'run.missed', label: 'A scheduled run was missed' },
  { event: 'host.unreachable', label: 'A host became unreachable' },
  { event: 'host.recovered', label: 'A host recovered' },
  { event: 'container.died', label: 'A container died (exited non-zero on its own)' },
  { event: 'container.unhealthy', label: 'A container turned unhealthy' },
  { event: 'action.succeeded', label: 'An action succeeded' },
  { event: 'window.changed', label: 'A window brought its target up or down' },
]

/** What a channel created without a choice gets: trouble, not routine. */
export const DEFAULT_EVENTS: NotifyEvent[] = EVENTS.map((e) => e.event).filter((e) => e !== 'action.succeeded' && e !== 'window.changed')

export type ServiceId = 'discord' | 'slack' | 'slack-bot' | 'ntfy' | 'gotify' | 'telegram' | 'pushover' | 'smtp' | 'webhook' | 'url'

export interface Field {
  key: string
  label: string
  hint?: string
  /** A secret: a password input, never shown again once saved. */
  secret?: boolean
  optional?: boolean
  placeholder?: string
  options?: { value: string; label: string }[]
}

export interface ServiceDef {
  id: ServiceId
  label: string
  fields: Field[]
}

const ENCRYPTIONS = [
  { value: 'auto', label: 'Auto (TLS on 465, else STARTTLS when offered)' },
  { value: 'explicittls', label: 'STARTTLS, required' },
  { value: 'implicittls', label: 'TLS from the start (port 465)' },
  { value: 'none', label: 'None (trusted network only)' },
]

export const SERVICES: ServiceDef[] = [
  { id: 'discord', label: 'Discord', fields: [
    { key: 'webhook', label: 'Webhook URL', secret: true, placeholder: 'https://discord.com/api/webhooks/…', hint: 'Channel settings → Integrations → Webhooks → Copy Webhook URL.' },
  ] },
  { id: 'slack', label: 'Slack (incoming webhook)', fields: [
    { key: 'webhook', label: 'Incoming webhook URL', secret: true, placeholder: 'https://hooks.slack.com/services/…' },
  ] },
  { id: 'slack-bot', label: 'Slack (bot token)', fields: [
    { key: 'token', label: 'Bot token', secret: true, placeholder: 'xoxb-…', hint: 'A Slack app\'s bot token with the chat:write scope; invite the app to the channel.' },
    { key: 'channel', label: 'Channel ID', placeholder: 'C0123456789', hint: 'Channel details → the ID at the bottom.' },
  ] },
  { id: 'ntfy', label: 'ntfy', fields: [
    { key: 'host', label: 'Server', placeholder: 'ntfy.sh', hint: 'Host name, with :port if not the default.' },
    { key: 'topic', label: 'Topic' },
    { key: 'user', label: 'User name', optional: true },
    { key: 'password', label: 'Password or access token (tk_…)', secret: true, optional: true },
    { key: 'scheme', label: 'Connection', options: [{ value: 'https', label: 'HTTPS' }, { value: 'http', label: 'HTTP (no TLS)' }] },
  ] },
  { id: 'gotify', label: 'Gotify', fields: [
    { key: 'host', label: 'Server', placeholder: 'gotify.example.com', hint: 'Host name, with :port and a path if Gotify is under one.' },
    { key: 'token', label: 'Application token', secret: true },
    { key: 'scheme', label: 'Connection', options: [{ value: 'https', label: 'HTTPS' }, { value: 'http', label: 'HTTP (no TLS)' }] },
  ] },
  { id: 'telegram', label: 'Telegram', fields: [
    { key: 'token', label: 'Bot token', secret: true, placeholder: '123456:ABC-DEF…', hint: 'From @BotFather.' },
    { key: 'chats', label: 'Chats', placeholder: '@mychannel, -1001234567890', hint: 'Channel names or chat ids, separated by commas.' },
  ] },
  { id: 'pushover', label: 'Pushover', fields: [
    { key: 'token', label: 'Application API token', secret: true },
    { key: 'user', label: 'User or group key', secret: true },
    { key: 'devices', label: 'Devices', optional: true, hint: 'Device names separated by commas; empty: all.' },
  ] },
  { id: 'smtp', label: 'E-mail (SMTP)', fields: [
    { key: 'host', label: 'SMTP server', placeholder: 'smtp.example.com' },
    { key: 'port', label: 'Port', placeholder: '587' },
    { key: 'user', label: 'User name', optional: true },
    { key: 'password', label: 'Password', secret: true, optional: true },
    { key: 'from', label: 'From address' },
    { key: 'to', label: 'To addresses', hint: 'Separated by commas.' },
    { key: 'encryption', label: 'Encryption', options: ENCRYPTIONS },
  ] },
  { id: 'webhook', label: 'Webhook (JSON)', fields: [
    { key: 'url', label: 'URL', secret: true, placeholder: 'https://hooks.example.com/docknap' },
  ] },
  { id: 'url', label: 'Any Shoutrrr URL', fields: [
    { key: 'url', label: 'URL', secret: true, placeholder: 'ntfy://ntfy.sh/my-topic' },
  ] },
]

export function service(id: ServiceId): ServiceDef {
  return SERVICES.find((s) => s.id === id) ?? SERVICES[0]!
}

/** Empty values, with each select's first option chosen. */
export function emptyFields(id: ServiceId): Record<string, string> {
  return Object.fromEntries(service(id).fields.map((f) => [f.key, f.options?.[0]?.value ?? '']))
}

const enc = encodeURIComponent
const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean)

/** The fields a form still needs, by key. */
export function missingFields(id: ServiceId, values: Record<string, string>): string[] {
  return service(id).fields.filter((f) => !f.optional && !f.options && !(values[f.key] ?? '').trim()).map((f) => f.key)
}

/** The channel URL the form's values stand for. The server checks it again. */
export function buildUrl(id: ServiceId, v: Record<string, string>): string {
  const g = (k: string) => (v[k] ?? '').trim()
  const auth = (user: string, password: string) => (user || password ? `${enc(user)}${password ? `:${enc(password)}` : ''}@` : '')
  switch (id) {
    // Pasted webhook addresses are converted by the server.
    case 'discord':
    case 'slack':
      return g('webhook')
    case 'ntfy': {
      const query = g('scheme') === 'http' ? '?scheme=http' : ''
      return `ntfy://${auth(g('user'), g('password'))}${g('host') || 'ntfy.sh'}/${enc(g('topic'))}${query}`
    }
    case 'gotify':
      return `gotify://${g('host').replace(/\/+$/, '')}/${enc(g('token'))}${g('scheme') === 'http' ? '?disabletls=yes' : ''}`
    case 'telegram': {
      // The token's colon stays: it splits the bot id from its secret, as the URL's user and password.
      const [bot, secret] = g('token').split(/:(.*)/s)
      return `telegram://${enc(bot ?? '')}${secret ? `:${enc(secret)}` : ''}@telegram?chats=${list(g('chats')).map(enc).join(',')}`
    }
    case 'slack-bot': {
      // xoxb-1-2-abc is slack://xoxb:1-2-abc@CHANNEL (Shoutrrr's form): the token's kind as the user.
      const [kind, rest] = g('token').split(/-(.*)/s)
      return `slack://${enc(kind ?? '')}:${enc(rest ?? '')}@${enc(g('channel'))}`
    }
    case 'pushover': {
      const devices = list(g('devices'))
      return `pushover://shoutrrr:${enc(g('token'))}@${enc(g('user'))}/${devices.length ? `?devices=${devices.map(enc).join(',')}` : ''}`
    }
    case 'smtp': {
      const port = g('port') ? `:${g('port')}` : ''
      const query = new URLSearchParams({ from: g('from'), to: list(g('to')).join(','), encryption: g('encryption') || 'auto' })
      return `smtp://${auth(g('user'), g('password'))}${g('host')}${port}/?${query.toString().replace(/%2C/g, ',').replace(/%40/g, '@')}`
    }
    case 'webhook': {
      const url = g('url')
      return /^https?:\/\//i.test(url) ? `generic+${url}` : url
    }
    case 'url':
      return g('url')
  }
}

/** A new Standard Webhooks signing secret (`whsec_` + base64 of 32 random bytes). */
export function newSecret(random: (n: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n))): string {
  return `whsec_${btoa(String.fromCharCode(...random(32)))}`
}

/** "Delivered (HTTP 204)", "Failed: the service answered 404 (not retried)". */
export function testResultText(r: NotifyTestResult): string {
  if (r.ok) return r.status ? `Delivered (HTTP ${r.status})` : 'Delivered'
  return `Failed: ${r.error ?? 'unknown error'}${r.status ? ` (HTTP ${r.status})` : ''}`
}

/** A delivery's state in a word, with the class of its badge. */
export function deliveryState(d: NotifyDelivery): { label: string; cls: string } {
  if (d.ok === null) return { label: d.attempts ? `retrying (${d.attempts} tried)` : 'pending', cls: 'warn' }
  return d.ok ? { label: 'delivered', cls: 'ok' } : { label: 'failed', cls: 'fail' }
}
