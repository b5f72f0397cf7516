// A context menu on long press (touch, pen, mouse held) or right-click, as the message
// bubbles have: `v-on="press.on(item)"` on the element, `press.fired()` in its click
// handler to skip the click that ends a long press.
import { onBeforeUnmount } from 'vue'

/**
 * @template T
 * @param {(item: T) => void} onMenu
 * @param {number} [ms]
 */
export function useLongPress(onMenu, ms = 500) {
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null
  /** @type {{x: number, y: number} | null} */
  let start = null
  let firedAt = 0
  const cancel = () => {
    if (timer) clearTimeout(timer)
    timer = null
  }
  onBeforeUnmount(cancel)
  return {
    /** @param {T} item */
    on: (item) => ({
      /** @param {PointerEvent} e */
      pointerdown(e) {
        if (e.button !== 0) return
        start = { x: e.clientX, y: e.clientY }
        cancel()
        timer = setTimeout(() => {
          timer = null
          firedAt = Date.now()
          onMenu(item)
        }, ms)
      },
      /** @param {PointerEvent} e */
      pointermove(e) {
        if (timer && start && Math.hypot(e.clientX - start.x, e.clientY - start.y) > 10) cancel()
      },
      pointerup: cancel,
      pointercancel: cancel,
      pointerleave: cancel,
      /** @param {MouseEvent} e */
      contextmenu(e) {
        e.preventDefault()
        cancel()
        if (Date.now() - firedAt > 800) onMenu(item) // not the long press that just fired
      },
    }),
    /** Did a long press just open the menu (so the click that follows is not a tap)? */
    fired: () => Date.now() - firedAt < 800,
  }
}
