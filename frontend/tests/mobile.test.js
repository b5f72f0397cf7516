import { describe, expect, it } from 'vitest'
import { isMobile, normalizeMobile, parseUserQuery } from '../src/lib/mobile.js'

describe('mobile numbers', () => {
  it('drop what people type between digits', () => {
    expect(normalizeMobile(' 139 1000 3352 ')).toBe('13910003352')
    expect(normalizeMobile('+86 (139) 1000-3352')).toBe('+8613910003352')
    expect(normalizeMobile('139.1000.3352')).toBe('13910003352')
    expect(normalizeMobile('139\u00a01000\u00a03352')).toBe('13910003352')
  })
  it('follow the server: optional +, 5 to 20 digits', () => {
    for (const ok of ['12345', '123456', '+8613910003352', '1'.repeat(20)]) expect(isMobile(ok)).toBe(true)
    for (const bad of ['1234', '1'.repeat(21), '++123456', '1234a6', '', '86+123456']) expect(isMobile(bad)).toBe(false)
  })
  it('tell user ids from mobiles', () => {
    expect(parseUserQuery('42')).toEqual({ id: 42, mobile: '' })
    expect(parseUserQuery('#123456')).toEqual({ id: 123456, mobile: '' })
    // a 6-digit number is a mobile first (and an id when no one has that number)
    expect(parseUserQuery('123456')).toEqual({ id: 123456, mobile: '123456' })
    expect(parseUserQuery('+86 139 1000 3352')).toEqual({ id: 0, mobile: '+8613910003352' })
    expect(parseUserQuery('139 1000 3352')).toEqual({ id: 13910003352, mobile: '13910003352' })
    expect(parseUserQuery('bob')).toBe(null)
    expect(parseUserQuery('0')).toBe(null)
  })
})
