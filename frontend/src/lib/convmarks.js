// What a user did to their chat list that only this browser keeps (localStorage, per
// user): "delete from my list" hides a conversation until a message newer than the
// last one it had arrives; "mark as unread" shows a dot on it until it is opened.
// Pin and mute are not here: they are kept by the server, for every device.

/** @typedef {{hidden: Record<string, number>, unread: Record<string, true>}} ConvMarks */

/** @param {number | string} userId */
export const marksKey = (userId) => `imhub.convmarks.${userId}`

/**
 * @param {number | string} userId
 * @param {Pick<Storage, 'getItem'>} [storage]
 * @returns {ConvMarks}
 */
export function loadMarks(userId, storage = localStorage) {
  try {
    const raw = JSON.parse(storage.getItem(marksKey(userId)) || 'null')
    return {
      hidden: raw && typeof raw.hidden === 'object' && raw.hidden ? raw.hidden : {},
      unread: raw && typeof raw.unread === 'object' && raw.unread ? raw.unread : {},
    }
  } catch {
    return { hidden: {}, unread: {} }
  }
}

/**
 * @param {number | string} userId
 * @param {ConvMarks} marks
 * @param {Pick<Storage, 'setItem' | 'removeItem'>} [storage]
 */
export function saveMarks(userId, marks, storage = localStorage) {
  if (!Object.keys(marks.hidden).length && !Object.keys(marks.unread).length) storage.removeItem(marksKey(userId))
  else storage.setItem(marksKey(userId), JSON.stringify(marks))
}

/**
 * Is `c` hidden from the list (deleted, and nothing newer arrived since)?
 * @param {ConvMarks} marks
 * @param {{conv: string, lastSeq: number}} c
 */
export function isHidden(marks, c) {
  const upTo = marks.hidden[c.conv]
  return upTo !== undefined && c.lastSeq <= upTo
}

/**
 * Hide `c` up to its current last message (it comes back with the next one).
 * @param {ConvMarks} marks
 * @param {{conv: string, lastSeq: number}} c
 */
export function hide(marks, c) {
  marks.hidden[c.conv] = c.lastSeq
  delete marks.unread[c.conv]
}

/**
 * Forget hides that a newer message has undone, and marks of conversations gone.
 * @param {ConvMarks} marks
 * @param {Array<{conv: string, lastSeq: number}>} convs
 * @returns {boolean} whether anything changed
 */
export function prune(marks, convs) {
  let changed = false
  const byConv = new Map(convs.map((c) => [c.conv, c]))
  for (const [conv, upTo] of Object.entries(marks.hidden)) {
    const c = byConv.get(conv)
    if (c && c.lastSeq > upTo) {
      delete marks.hidden[conv]
      changed = true
    }
  }
  return changed
}
