// Which voice messages the user has played, so the others keep a dot: per user in
// localStorage (`imhub.heard.<id>`), newest kept when the list grows long.
import { reactive } from 'vue'

const PREFIX = 'imhub.heard.'
const MAX_KEPT = 1000

const cache = new Map() // user id → reactive Set of message keys

/** @param {Record<string, any>} m */
export function heardKey(m) {
  return m.id ? `i${m.id}` : `${m.conv}:${m.seq}`
}

/**
 * @param {number | string} userId
 */
export function useHeard(userId) {
  let set = cache.get(userId)
  if (!set) {
    let saved = []
    try {
      saved = JSON.parse(localStorage.getItem(PREFIX + userId) || '[]')
    } catch { /* corrupted: start over */ }
    set = reactive(new Set(Array.isArray(saved) ? saved : []))
    cache.set(userId, set)
  }
  const heard = set
  return {
    /** @param {Record<string, any>} m */
    has: (m) => heard.has(heardKey(m)),
    /** @param {Record<string, any>} m */
    mark(m) {
      const key = heardKey(m)
      if (heard.has(key)) return
      heard.add(key)
      const all = [...heard].slice(-MAX_KEPT)
      try {
        localStorage.setItem(PREFIX + userId, JSON.stringify(all))
      } catch { /* storage full or disabled */ }
    },
  }
}
