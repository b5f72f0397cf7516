// An image message carries its original's size in `memo` as "WxH" (docs/protocol.md,
// media 4), so a receiver lays the bubble out at its final size before a pixel arrives
// and the list does not jump when the picture loads. Older messages have no size.

const SIZE = /^(\d{1,5})x(\d{1,5})$/

/**
 * The "WxH" memo for an uploaded image ('' when the server did not say).
 * @param {{width?: number, height?: number}} f  the upload reply's file fields
 * @returns {string}
 */
export function imageSize(f) {
  const w = Math.round(Number(f?.width) || 0)
  const h = Math.round(Number(f?.height) || 0)
  return w > 0 && h > 0 && w < 100000 && h < 100000 ? `${w}x${h}` : ''
}

/**
 * The box an image of size `memo` is drawn in: scaled down (never up) to fit
 * `maxW` x `maxH`, at least `minW` x `minH`. null when the memo is no size.
 * @param {unknown} memo
 * @param {{maxW?: number, maxH?: number, minW?: number, minH?: number}} [o]
 * @returns {{width: number, height: number} | null}
 */
export function imageBox(memo, { maxW = 180, maxH = 220, minW = 60, minH = 40 } = {}) {
  const m = SIZE.exec(String(memo ?? ''))
  if (!m) return null
  const w = Number(m[1])
  const h = Number(m[2])
  if (!w || !h) return null
  const scale = Math.min(1, maxW / w, maxH / h)
  return { width: Math.max(minW, Math.round(w * scale)), height: Math.max(minH, Math.round(h * scale)) }
}
