// Keyboard and mouse conventions of a desktop app, for the whole page.

/** @type {{x: number, y: number, at: number} | null} */
let lastContextMenu = null

/** Remember where the last right click was (read by a view that opens a menu there). */
export function trackContextMenu() {
  window.addEventListener('contextmenu', (e) => {
    lastContextMenu = { x: e.clientX, y: e.clientY, at: performance.now() }
  }, true)
}

/**
 * The pointer position of a right click in the last `ms`, else null (the menu was
 * opened by a long press: a bottom sheet then suits better).
 * @param {number} [ms]
 */
export function recentContextMenu(ms = 600) {
  return lastContextMenu && performance.now() - lastContextMenu.at < ms ? lastContextMenu : null
}

/** @param {Element} el  (not offsetParent: it is null for the fixed overlays and pop-ups) */
function shown(el) {
  return el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden'
}

/**
 * Esc closes what is on top: a dialog (its cancel button), else the topmost popup,
 * action sheet or image viewer (by a click on its overlay, which Vant closes them on).
 * @returns {boolean} whether something was closed
 */
export function closeTopLayer() {
  const dialog = [...document.querySelectorAll('.van-dialog')].find(shown)
  if (dialog) {
    const button = dialog.querySelector('.van-dialog__cancel') || dialog.querySelector('.van-dialog__confirm')
    if (button instanceof HTMLElement) {
      button.click()
      return true
    }
  }
  const overlays = [...document.querySelectorAll('.van-overlay')].filter(shown)
  if (!overlays.length) return false
  /** @param {Element} el */
  const z = (el) => Number(getComputedStyle(el).zIndex) || 0
  const top = /** @type {HTMLElement} */ (overlays.reduce((a, b) => (z(b) >= z(a) ? b : a)))
  top.click()
  return true
}
