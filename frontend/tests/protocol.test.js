import { describe, expect, it } from 'vitest'
import {
  CMD, MEDIA, buildMessageFrame, convId, linkify, messageConv, newCid, parseConv, safeUrl, summary, syncFrame,
} from '@imhub/sdk/protocol.js'
import { backoffDelay } from '@imhub/sdk/backoff.js'

describe('conversation ids', () => {
  it('orders the pair and prefixes groups', () => {
    expect(convId(CMD.PRIVATE, 7, 3)).toBe('p3_7')
    expect(convId(CMD.PRIVATE, 3, 7)).toBe('p3_7')
    expect(convId(CMD.GROUP, 3, 12)).toBe('g12')
  })
  it('parses back to the peer or group', () => {
    expect(parseConv('p3_7', 3)).toEqual({ cmd: 10, dstid: 7 })
    expect(parseConv('p3_7', 7)).toEqual({ cmd: 10, dstid: 3 })
    expect(parseConv('g12', 7)).toEqual({ cmd: 11, dstid: 12 })
    expect(parseConv('x', 7)).toBeNull()
  })
  it('derives the conversation of a message without conv', () => {
    expect(messageConv({ cmd: 10, userid: 7, dstid: 3 }, 3)).toBe('p3_7')
    expect(messageConv({ cmd: 10, userid: 3, dstid: 7 }, 3)).toBe('p3_7')
    expect(messageConv({ cmd: 11, userid: 9, dstid: 4 }, 3)).toBe('g4')
    expect(messageConv({ conv: 'p1_2', cmd: 10 }, 3)).toBe('p1_2')
  })
})

describe('frames', () => {
  it('builds the seed body plus cid and nothing local', () => {
    const f = buildMessageFrame({
      cmd: 10, dstid: '7', media: MEDIA.TEXT, content: '你好', cid: 'c-1', state: 'pending', userid: 3, pic: '',
    })
    expect(f).toEqual({ cmd: 10, dstid: 7, media: 1, content: '你好', cid: 'c-1' })
  })
  it('rounds amount and keeps voice url', () => {
    expect(buildMessageFrame({ cmd: 11, dstid: 2, media: MEDIA.VOICE, url: '/mnt/a.webm', amount: 3.4 }))
      .toEqual({ cmd: 11, dstid: 2, media: 3, url: '/mnt/a.webm', amount: 3 })
  })
  it('refuses bad cmd or media', () => {
    expect(() => buildMessageFrame({ cmd: 20, dstid: 1, media: 1 })).toThrow()
    expect(() => buildMessageFrame({ cmd: 10, dstid: 1, media: 10 })).toThrow()
  })
  it('makes short unique cids', () => {
    const a = newCid()
    const b = newCid()
    expect(a).not.toBe(b)
    expect(a.length).toBeLessThanOrEqual(64)
  })
  it('builds sync frames', () => {
    const f = syncFrame({ p3_7: 41 }, 50, 'r9')
    expect(f).toEqual({ cmd: 20, rid: 'r9', after: { p3_7: 41 }, limit: 50 })
  })
})

describe('links', () => {
  it('only http and https', () => {
    expect(safeUrl('javascript:alert(1)')).toBe('')
    expect(safeUrl('data:text/html,x')).toBe('')
    expect(safeUrl('https://example.com/a?b=1')).toBe('https://example.com/a?b=1')
  })
  it('splits text into parts without ever producing html', () => {
    const parts = linkify('see https://a.example/x and <script>alert(1)</script>')
    expect(parts[0]).toEqual({ text: 'see ' })
    expect(parts[1]).toEqual({ text: 'https://a.example/x', href: 'https://a.example/x' })
    expect(parts[2].text).toContain('<script>')
    expect(parts[2].href).toBeUndefined()
  })
  it('summarises media', () => {
    expect(summary({ media: 1, content: 'hi' })).toBe('hi')
    expect(summary({ media: 3, amount: 4 })).toContain('4')
    expect(summary({ media: 4 })).toBe('[image]')
  })
})

describe('backoff', () => {
  it('grows exponentially, is capped, and jitters within [step/2, step]', () => {
    const lo = (n) => backoffDelay(n, { base: 500, max: 30000, random: () => 0 })
    const hi = (n) => backoffDelay(n, { base: 500, max: 30000, random: () => 0.999999 })
    expect(lo(0)).toBe(250)
    expect(hi(0)).toBe(500)
    expect(lo(1)).toBe(500)
    expect(hi(3)).toBe(4000)
    expect(hi(20)).toBe(30000)
    expect(lo(20)).toBe(15000)
    for (let n = 0; n < 10; n++) expect(lo(n + 1)).toBeGreaterThanOrEqual(lo(n))
  })
  it('spreads clients out', () => {
    const seen = new Set()
    for (let i = 0; i < 50; i++) seen.add(backoffDelay(4))
    expect(seen.size).toBeGreaterThan(10)
  })
})
