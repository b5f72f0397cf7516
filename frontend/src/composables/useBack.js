// The nav bar's back arrow. On a page the app navigated to, it goes back; on the tab's
// first page (opened from a link, a notification or a reload) there is nothing of the
// app to go back to, and history.back() would leave the app (to about:blank or another
// site), so it goes to `fallback` instead.
import { useRouter } from 'vue-router'

/** @param {string} fallback  where the arrow leads from a first page */
export function useBack(fallback) {
  const router = useRouter()
  return () => {
    // vue-router records the previous in-app location in history.state.back.
    if (window.history.state?.back) router.back()
    else router.replace(fallback)
  }
}
