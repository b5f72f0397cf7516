// Where a message list stays while its content changes: at the bottom when the user is
// there (or just sent), still when older messages are prepended above, and untouched
// while a search hit is being scrolled into view. Older pages load when the user scrolls
// to the top, and by themselves while the list is too short to scroll.
import { nextTick, onMounted, watch } from 'vue'

const NEAR_BOTTOM_PX = 120 // "at the bottom" with some slack (a partly shown last bubble)
const LOAD_OLDER_PX = 40 // scrolled this close to the top: fetch the page above

/**
 * @param {import('vue').Ref<HTMLElement | null>} list  the scrolling element
 * @param {import('vue').Ref<Array<{seq?: number, cid?: string, userid?: number}>>} messages
 * @param {object} o
 * @param {() => number} o.selfId
 * @param {() => boolean} o.canLoadOlder  there is history above and no page is in flight
 * @param {() => boolean} o.loadOlder     ask for the page above; false when nothing was sent
 */
export function useScrollAnchor(list, messages, o) {
  let anchor = null // distance from the bottom to keep while older messages are prepended
  let jumping = false
  let filledAt = -1 // how many messages there were when fill() last asked for a page

  function nearBottom() {
    const el = list.value
    return !el || el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX
  }

  function scrollToBottom() {
    const el = list.value
    if (el) el.scrollTop = el.scrollHeight
  }

  watch(() => [messages.value.length, messages.value[0]?.seq, messages.value.at(-1)?.cid, messages.value.at(-1)?.seq],
    async ([, firstSeq], old) => {
      const el = list.value
      const stick = nearBottom() || messages.value.at(-1)?.userid === o.selfId()
      const prepended = old && old[1] && firstSeq && firstSeq < old[1]
      const before = el ? el.scrollHeight - el.scrollTop : 0
      await nextTick()
      if (!el) return
      if (prepended || anchor !== null) {
        el.scrollTop = el.scrollHeight - before
        anchor = null
      } else if (stick && !jumping) {
        scrollToBottom()
      }
      fill()
    })

  /**
   * A list too short to scroll cannot be scrolled up to ask for older messages: load
   * pages until it overflows or the conversation's start is reached. A page that added
   * nothing stops it (no loop on an odd reply).
   */
  function fill() {
    const el = list.value
    if (!el || jumping || !el.clientHeight || el.scrollHeight > el.clientHeight) return
    if (!o.canLoadOlder() || messages.value.length === filledAt) return
    filledAt = messages.value.length
    anchor = el.scrollHeight - el.scrollTop
    if (!o.loadOlder()) {
      anchor = null
      filledAt = -1
    }
  }
  // The window became loaded, or a page finished (loaded or not): maybe fill again.
  watch(() => o.canLoadOlder(), (can) => { if (can) nextTick(fill) })
  onMounted(() => nextTick(fill))

  function onScroll() {
    const el = list.value
    if (el && !jumping && el.scrollTop < LOAD_OLDER_PX && o.canLoadOlder()) {
      anchor = el.scrollHeight - el.scrollTop
      if (!o.loadOlder()) anchor = null
    }
  }

  /**
   * Run `fn` (which scrolls to a message itself) without the list following new
   * messages to the bottom or loading older pages meanwhile.
   * @template T
   * @param {() => Promise<T>} fn
   * @returns {Promise<T>}
   */
  async function whileJumping(fn) {
    jumping = true
    try {
      return await fn()
    } finally {
      jumping = false
    }
  }

  return { nearBottom, scrollToBottom, onScroll, whileJumping }
}
