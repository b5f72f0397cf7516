import { describe, expect, it } from 'vitest'
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
