// A CSS media query as a ref, e.g. the desktop layout's width.
import { onBeforeUnmount, ref } from 'vue'

/** At least this wide: two panes, list left and chat right (App.vue). */
export const WIDE = '(min-width: 1024px)'

/** @param {string} query */
export function useMedia(query) {
  const mq = window.matchMedia(query)
  const on = ref(mq.matches)
  /** @param {MediaQueryListEvent} e */
  const changed = (e) => { on.value = e.matches }
  mq.addEventListener('change', changed)
  onBeforeUnmount(() => mq.removeEventListener('change', changed))
  return on
}
