import { describe, expect, it } from 'vitest'
import { GROUP_GAP_MS, dayLabel, layoutMessages } from '../src/lib/chatlayout.js'
import { imageBox, imageSize } from '../src/lib/imagebox.js'

describe('image sizes (media 4 memo "WxH")', () => {
  it('is written from the upload reply, empty when unknown', () => {
    expect(imageSize({ width: 1200, height: 900 })).toBe('1200x900')
    expect(imageSize({ width: 0, height: 900 })).toBe('')
    expect(imageSize({})).toBe('')
    expect(imageSize(undefined)).toBe('')
  })
  it('gives the drawn box: scaled down to fit, never up, with a minimum', () => {
    expect(imageBox('1200x900')).toEqual({ width: 180, height: 135 })
    expect(imageBox('600x1200')).toEqual({ width: 110, height: 220 })
    expect(imageBox('100x80')).toEqual({ width: 100, height: 80 })
    expect(imageBox('4000x10')).toEqual({ width: 180, height: 40 })
  })
  it('ignores a memo that is no size (old messages, other text)', () => {
    for (const m of ['', undefined, null, 'hello', '0x0', '12x', 'x9', '1x2x3']) expect(imageBox(m)).toBeNull()
  })
})

describe('message layout: days, the unread line, runs of one sender', () => {
  const day1 = new Date(2026, 2, 3, 10, 0).getTime()
  const day2 = new Date(2026, 2, 4, 9, 0).getTime()
  const msg = (seq, userid, ts, extra = {}) => ({ seq, userid, ts, media: 1, content: `m${seq}`, state: 'sent', ...extra })
  const kinds = (rows) => rows.map((r) => (r.kind === 'msg' ? `${r.msg.seq}${r.first ? 'F' : ''}${r.last ? 'L' : ''}` : r.kind))

  it('puts a date line where the day changes', () => {
    const rows = layoutMessages([msg(1, 3, day1), msg(2, 3, day1 + 1000), msg(3, 3, day2)])
    expect(kinds(rows)).toEqual(['day', '1F', '2L', 'day', '3FL'])
    expect(rows[0].key).not.toBe(rows[3].key)
  })
  it('groups one sender within a few minutes; another sender, a pause or an event breaks it', () => {
    const rows = layoutMessages([
      msg(1, 3, day1), msg(2, 3, day1 + 60_000), msg(3, 4, day1 + 61_000), msg(4, 4, day1 + 62_000 + GROUP_GAP_MS),
      msg(5, 4, day1 + 63_000 + GROUP_GAP_MS, { media: 10 }), msg(6, 4, day1 + 64_000 + GROUP_GAP_MS),
    ])
    expect(kinds(rows)).toEqual(['day', '1F', '2L', '3FL', '4FL', '5FL', '6FL'])
  })
  it('puts the unread line above the first message after the read cursor, once', () => {
    const ms = [msg(1, 4, day1), msg(2, 4, day1 + 1000), msg(3, 4, day1 + 2000)]
    expect(kinds(layoutMessages(ms, { unreadAfter: 1 }))).toEqual(['day', '1FL', 'unread', '2F', '3L'])
    expect(kinds(layoutMessages(ms, { unreadAfter: 0 }))).toEqual(['day', 'unread', '1F', '2', '3L'])
    expect(kinds(layoutMessages(ms))).toEqual(['day', '1F', '2', '3L'])
  })
  it('keeps pending messages (no seq) below without an unread line', () => {
    const rows = layoutMessages([msg(1, 3, day1), { cid: 'c1', seq: 0, userid: 3, ts: day1 + 5, media: 1, state: 'pending' }],
      { unreadAfter: 1 })
    expect(kinds(rows)).toEqual(['day', '1F', '0L'])
    expect(rows[2].key).toBe('c:c1')
  })
  it('labels days: today, yesterday, else a date', () => {
    const now = new Date(2026, 2, 10, 12, 0).getTime()
    expect(dayLabel(now - 3600_000, now, 'en-US')).toBe('Today')
    expect(dayLabel(now - 86400_000, now, 'en-US')).toBe('Yesterday')
    expect(dayLabel(new Date(2026, 0, 2).getTime(), now, 'en-US')).toBe('January 2')
    expect(dayLabel(new Date(2025, 0, 2).getTime(), now, 'en-US')).toBe('January 2, 2025')
  })
})
