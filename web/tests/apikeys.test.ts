import { describe, expect, it } from 'vitest'
import { expiresAt, expiryLabel, isExpired, keyNameProblem, rolesUpTo } from '../src/lib/apikeys'

describe('API keys panel', () => {
  it('offers roles up to the user’s own', () => {
    expect(rolesUpTo('viewer')).toEqual(['viewer'])
    expect(rolesUpTo('operator')).toEqual(['viewer', 'operator'])
    expect(rolesUpTo('admin')).toEqual(['viewer', 'operator', 'admin'])
  })

  it('turns an expiry choice into a time, or none', () => {
    const now = new Date('2026-03-01T12:00:00Z')
    expect(expiresAt(0, now)).toBeUndefined()
    expect(expiresAt(30, now)).toBe('2026-03-31T12:00:00.000Z')
    expect(expiryLabel(0)).toBe('never')
    expect(expiryLabel(365)).toBe('in 1 year')
  })

  it('knows an expired key', () => {
    const now = Date.parse('2026-03-01T12:00:00Z')
    expect(isExpired({ expires_at: null }, now)).toBe(false)
    expect(isExpired({ expires_at: '2026-03-01T11:59:59Z' }, now)).toBe(true)
    expect(isExpired({ expires_at: '2026-03-02T00:00:00Z' }, now)).toBe(false)
  })

  it('checks names as the server does', () => {
    expect(keyNameProblem('deploy-bot.v2_x')).toBeNull()
    expect(keyNameProblem('')).not.toBeNull()
    expect(keyNameProblem('ci:prod')).not.toBeNull()
    expect(keyNameProblem('has space')).not.toBeNull()
    expect(keyNameProblem('x'.repeat(65))).not.toBeNull()
  })
})
