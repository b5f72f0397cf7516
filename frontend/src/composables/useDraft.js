// What the user was writing in each conversation, kept across navigation and reloads:
// one localStorage entry per user (`imhub.drafts.<id>`: conv → text).

const PREFIX = 'imhub.drafts.'
const MAX_DRAFTS = 200 // the oldest go first beyond this

/**
 * @param {number | string} userId
 * @returns {Record<string, {text: string, at: number}>}
 */
function readAll(userId) {
  try {
    const v = JSON.parse(localStorage.getItem(PREFIX + userId) || '{}')
    return v && typeof v === 'object' ? v : {}
  } catch {
    return {}
  }
}

/**
 * @param {number | string} userId
 * @param {string} conv
 * @returns {string}
 */
export function loadDraft(userId, conv) {
  if (!userId) return ''
  const d = readAll(userId)[conv]
  return d && typeof d.text === 'string' ? d.text : ''
}

/**
 * Keep (or, for blank text, forget) the draft of `conv`.
 * @param {number | string} userId
 * @param {string} conv
 * @param {string} text
 */
export function saveDraft(userId, conv, text) {
  if (!userId) return
  const all = readAll(userId)
  if (text.trim()) all[conv] = { text, at: Date.now() }
  else if (conv in all) delete all[conv]
  else return
  const keys = Object.keys(all)
  if (keys.length > MAX_DRAFTS) {
    keys.sort((a, b) => all[a].at - all[b].at).slice(0, keys.length - MAX_DRAFTS).forEach((k) => delete all[k])
  }
  try {
    if (Object.keys(all).length) localStorage.setItem(PREFIX + userId, JSON.stringify(all))
    else localStorage.removeItem(PREFIX + userId)
  } catch { /* storage full or disabled: drafts live as long as the page */ }
}
