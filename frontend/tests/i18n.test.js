import { describe, expect, it } from 'vitest'
import { ApiError } from '../src/lib/api.js'
import { dicts, errorText, formatTime, pickLang } from '../src/lib/i18n.js'

describe('i18n', () => {
  it('follows the browser language', () => {
    expect(pickLang(['zh-CN', 'en'])).toBe('zh')
    expect(pickLang(['zh-TW'])).toBe('zh')
    expect(pickLang(['en-GB', 'zh'])).toBe('en')
    expect(pickLang(['fr-FR'])).toBe('en')
    expect(pickLang([])).toBe('en')
  })
  it('has every key in both languages', () => {
    expect(Object.keys(dicts.zh).sort()).toEqual(Object.keys(dicts.en).sort())
  })
  it('translates refusals by their error name, else shows the server message', () => {
    const refusal = (error, msg) => new ApiError(msg, 403, { code: -1, error, msg })
    expect(errorText(refusal('role_required', 'only the group owner may do this'))).toBe(dicts.en.err_role_required)
    expect(errorText(refusal('invite_revoked', 'x'))).toBe(dicts.en.err_invite_revoked)
    expect(errorText(refusal('something_new', 'server says no'))).toBe('server says no')
    expect(errorText(new Error('network down'))).toBe('network down')
    for (const k of ['err_role_required', 'err_banned', 'err_invite_expired', 'err_owner_fixed']) {
      expect(dicts.zh[k]).toBeTruthy()
      expect(dicts.zh[k]).not.toBe(dicts.en[k])
    }
  })
  it('formats times relative to now', () => {
    const now = new Date(2025, 5, 15, 18, 0).getTime()
    expect(formatTime(new Date(2025, 5, 15, 9, 5).getTime(), now)).toBe('09:05')
    expect(formatTime(new Date(2025, 5, 14, 23, 59).getTime(), now)).toMatch(/23:59$/)
    expect(formatTime(new Date(2025, 0, 2, 7, 0).getTime(), now)).toBe('01-02 07:00')
    expect(formatTime(new Date(2023, 0, 2, 7, 0).getTime(), now)).toBe('2023-01-02')
    expect(formatTime(0, now)).toBe('')
  })
})
