// Where a message list stays while its content changes: at the bottom when the user is
// there (or just sent), also while pictures load and bubbles grow after the fact; still
// when older messages are prepended above; untouched while a search hit is being
// scrolled into view. Scrolled up, new messages are counted (the "↓ new messages"
// button) instead of moving the view. Older pages load when the user scrolls to the
// top, and by themselves while the list is too short to scroll.
import { nextTick, onBeforeUnmount, onMounted, ref, watch } from 'vue'

const NEAR_BOTTOM_PX = 120 // "at the bottom" with some slack (a partly shown last bubble)
const LOAD_OLDER_PX = 40 // scrolled this close to the top: fetch the page above

/**
 * @param {import('vue').Ref<HTMLElement | null>} list  the scrolling element
 * @param {import('vue').Ref<Array<{seq?: number, cid?: string, userid?: number}>>} messages
 * @param {object} o
 * @param {() => number} o.selfId
 * @param {() => boolean} o.canLoadOlder  there is history above and no page is in flight
 * @param {() => boolean} o.loadOlder     ask for the page above; false when nothing was sent
 * @param {import('vue').Ref<HTMLElement | null>} [o.content]  the element holding the
 *   messages inside `list`: when it grows (an image loaded) a list at the bottom stays there
 */
export function useScrollAnchor(list, messages, o) {
  let anchor = null // distance from the bottom to keep while older messages are prepended
  let jumping = false
  let filledAt = -1 // how many messages there were when fill() last asked for a page
  // The user is at the bottom (as of the last scroll): what arrives or grows below is
  // followed. Not recomputed from the geometry when content grows, since a picture that
  // loads moves the bottom away without the user scrolling.
  const stuck = ref(true)
  const unseen = ref(0) // messages that arrived below while the user was scrolled up

  function nearBottom() {
    const el = list.value
    return !el || el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX
  }

  function scrollToBottom() {
    const el = list.value
    if (el) el.scrollTop = el.scrollHeight
    stuck.value = true
    unseen.value = 0
  }

  watch(() => [messages.value.length, messages.value[0]?.seq, messages.value.at(-1)?.cid, messages.value.at(-1)?.seq],
    async ([len, firstSeq, lastCid, lastSeq], old) => {
      const el = list.value
      const last = messages.value.at(-1)
      const mine = !!last && Number(last.userid) === Number(o.selfId())
      const stick = stuck.value || nearBottom() || mine
      const prepended = old && old[1] && firstSeq && firstSeq < old[1]
      const appended = !!old && !prepended && len > old[0] && (lastCid !== old[2] || lastSeq !== old[3])
      const before = el ? el.scrollHeight - el.scrollTop : 0
      await nextTick()
      if (!el) return
      if (prepended || anchor !== null) {
        el.scrollTop = el.scrollHeight - before
        anchor = null
      } else if (stick && !jumping) {
        scrollToBottom()
      } else if (appended && !jumping) {
        unseen.value += len - old[0]
      }
      fill()
    })

  // Content that grows after it was laid out (a picture without a known size loading, a
  // panel shrinking the list): stay at the bottom if the user was there.
  let resize = null
  onMounted(() => {
    if (typeof ResizeObserver === 'undefined') return
    resize = new ResizeObserver(() => {
      if (stuck.value && !jumping) scrollToBottom()
    })
    if (o.content?.value) resize.observe(o.content.value)
    if (list.value) resize.observe(list.value)
  })
  onBeforeUnmount(() => resize?.disconnect())

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
    stuck.value = nearBottom()
    if (stuck.value) unseen.value = 0
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
    stuck.value = false
    try {
      return await fn()
    } finally {
      jumping = false
      stuck.value = nearBottom()
    }
  }

  return { nearBottom, scrollToBottom, onScroll, whileJumping, stuck, unseen }
}
