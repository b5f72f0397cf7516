// How a conversation's messages are laid out: a date line where the day changes, a
// "new messages" line above the first one unread when the chat was opened, and runs of
// one sender's messages grouped (one avatar and name at the top of the run, one time
// at its bottom). Pure: the list component renders what this returns.

import { t } from './i18n.js'
import { MEDIA } from '@imhub/sdk/protocol.js'

export const GROUP_GAP_MS = 5 * 60 * 1000 // a pause this long starts a new run

/**
 * @typedef {{kind: 'day', key: string, ts: number}
 *   | {kind: 'unread', key: string}
 *   | {kind: 'msg', key: string, msg: Record<string, any>, first: boolean, last: boolean, event: boolean}} Row
 */

/**
 * @param {number} ms
 * @returns {number} local midnight of that day
 */
function dayOf(ms) {
  const d = new Date(ms)
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime()
}

/**
 * @param {Record<string, any>} m
 * @returns {string}
 */
export function messageKey(m) {
  return m.cid && m.state !== 'sent' ? `c:${m.cid}` : `s:${m.seq || m.id}`
}

/**
 * @param {Array<Record<string, any>>} messages  loaded then pending, in order
 * @param {{unreadAfter?: number}} [o]  messages with seq above this were unread when the
 *   chat was opened (-1: none were)
 * @returns {Row[]}
 */
export function layoutMessages(messages, { unreadAfter = -1 } = {}) {
  /** @type {Row[]} */
  const rows = []
  let day = -1
  let dividerDone = !(unreadAfter >= 0)
  /** @type {(Row & {kind: 'msg'}) | null} */
  let prev = null
  for (const m of messages) {
    let breaks = false
    const ts = Number(m.ts) || 0
    if (ts && dayOf(ts) !== day) {
      day = dayOf(ts)
      rows.push({ kind: 'day', key: `d:${day}`, ts: day })
      breaks = true
    }
    if (!dividerDone && Number(m.seq) > unreadAfter) {
      dividerDone = true
      rows.push({ kind: 'unread', key: 'unread' })
      breaks = true
    }
    const event = Number(m.media) === MEDIA.EVENT
    const joins = !breaks && !event && prev && !prev.event && Number(prev.msg.userid) === Number(m.userid)
      && ts - (Number(prev.msg.ts) || 0) < GROUP_GAP_MS
    if (prev && !joins) prev.last = true
    const row = { kind: /** @type {'msg'} */ ('msg'), key: messageKey(m), msg: m, first: !joins, last: true, event }
    if (prev && joins) prev.last = false
    rows.push(row)
    prev = row
  }
  return rows
}

/**
 * The date line's text: "Today", "Yesterday", a weekday this week, else the date.
 * @param {number} ms
 * @param {number} [now]
 * @param {string} [locale]
 */
export function dayLabel(ms, now = Date.now(), locale = globalThis.document?.documentElement?.lang || undefined) {
  const diff = Math.round((dayOf(now) - dayOf(ms)) / 86400000)
  if (diff === 0) return t('today')
  if (diff === 1) return t('yesterday')
  const d = new Date(ms)
  const sameYear = d.getFullYear() === new Date(now).getFullYear()
  if (diff > 1 && diff < 7) return d.toLocaleDateString(locale, { weekday: 'long' })
  return d.toLocaleDateString(locale, sameYear ? { month: 'long', day: 'numeric' } : { year: 'numeric', month: 'long', day: 'numeric' })
}
