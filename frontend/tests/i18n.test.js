import { describe, expect, it } from 'vitest'
import { dicts, formatTime, pickLang } from '../src/lib/i18n.js'

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
  it('formats times relative to now', () => {
    const now = new Date(2025, 5, 15, 18, 0).getTime()
    expect(formatTime(new Date(2025, 5, 15, 9, 5).getTime(), now)).toBe('09:05')
    expect(formatTime(new Date(2025, 5, 14, 23, 59).getTime(), now)).toMatch(/23:59$/)
    expect(formatTime(new Date(2025, 0, 2, 7, 0).getTime(), now)).toBe('01-02 07:00')
    expect(formatTime(new Date(2023, 0, 2, 7, 0).getTime(), now)).toBe('2023-01-02')
    expect(formatTime(0, now)).toBe('')
  })
})
