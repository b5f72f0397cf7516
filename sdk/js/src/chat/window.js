// The loaded window of each conversation: messages ordered by seq and deduplicated by
// (conv, seq); which part of the history is loaded (floor, contig); history pages
// below it (cmd 22 → 32); recall (cmd 25 → 36).

import { EDIT_WINDOW_MS, MEDIA, historyFrame, messageConv, newRid, recallFrame } from '../protocol.js'
import { settlePending } from './outbox.js'
import { markRead, readUpTo } from './receipts.js'
import { SEND_STATE, advanceContig, ensureConv, insertBySeq, isShown, startWindow } from './state.js'
import { applyUpdate, isUpdate } from './updates.js'

/** @typedef {import('./state.js').CoreState} CoreState */
/** @typedef {import('./state.js').Conv} Conv */
/** @typedef {import('./state.js').Msg} Msg */

/**
 * Add a message frame (cmd 10/11 live, or from a sync or history page).
 * @param {CoreState} s
 * @param {Record<string, any>} frame
 * @param {{live?: boolean, asOf?: number}} [o]  live: a gap before it means messages
 *   were missed; asOf: a page's highest seq in this conversation (the message's state
 *   includes every update up to it)
 * @returns {{added: boolean, gap: boolean, conv: string, msg: Msg, changed?: Msg[]}}
 *   added: a new message to draw (an update is never one: `changed` lists what it changed)
 */
export function receive(s, frame, { live = true, asOf = 0 } = {}) {
  const conv = messageConv(frame, s.selfId)
  const c = ensureConv(s, conv)
  const seq = Number(frame.seq) || 0
  const msg = /** @type {Msg} */ ({ ...frame, conv, seq, state: SEND_STATE.SENT })
  if (asOf > seq && !isUpdate(msg)) msg.asOf = asOf
  if (msg.recalled) eraseRecalled(msg)
  const mine = Number(msg.userid) === s.selfId
  // Our own message coming back (sync, another device): it settles a pending copy.
  if (msg.cid && mine) settlePending(s, msg.cid)
  if (c.typing[msg.userid]) delete c.typing[msg.userid] // they sent what they were typing
  if (!seq && isUpdate(msg)) return { added: false, gap: false, conv, msg, changed: applyUpdate(s, c, msg) }
  if (!seq) {
    // No seq (not expected from imhub): keep it, deduplicated by server id.
    const key = `id:${msg.id}`
    if (msg.id && c.seen[key]) return { added: false, gap: false, conv, msg }
    if (msg.id) c.seen[key] = true
    c.msgs.push(msg)
    touch(c, msg)
    return { added: true, gap: false, conv, msg }
  }
  if (c.seen[seq]) return { added: false, gap: false, conv, msg }
  let gap = false
  if (!c.loaded) {
    // First sight of this conversation: start the loaded window here.
    startWindow(c, seq, !s.listLoaded)
  } else if (live && seq > c.contig + 1 && seq > c.floor + 1) {
    gap = true
  }
  if (seq <= c.floor) c.floor = seq - 1 // history page below the window
  c.seen[seq] = true
  if (isUpdate(msg)) {
    // Moves the cursors like a message; changes the message it names, is never drawn,
    // never unread and never the list's last.
    advanceContig(c)
    if (seq > c.lastSeq) c.lastSeq = seq
    if (isShown(s, conv)) markRead(s, conv)
    return { added: false, gap, conv, msg, changed: applyUpdate(s, c, msg) }
  }
  insertBySeq(c.msgs, msg)
  advanceContig(c)
  if (seq > c.lastSeq) c.lastSeq = seq
  touch(c, msg)
  if (mine) {
    // Writing in a conversation means having read it up to there (other devices too).
    if (seq > c.unreadBase || isShown(s, conv)) readUpTo(c, seq)
  } else if (seq > c.readSeq && seq > c.unreadBase) {
    if (isShown(s, conv)) markRead(s, conv)
    else {
      c.unread += 1
      if (mentionsMe(msg, s.selfId)) c.mentioned = true
    }
  } else if (isShown(s, conv)) {
    markRead(s, conv)
  }
  return { added: true, gap, conv, msg }
}

/**
 * @param {Conv} c
 * @param {Msg} msg
 */
function touch(c, msg) {
  const last = c.last
  if (!last || (msg.seq || 0) >= (last.seq || 0)) {
    c.last = msg
    c.lastTs = msg.ts || c.lastTs
  }
}

// ---- history pages ------------------------------------------------------------------

/**
 * @param {CoreState} s
 * @param {string} conv
 */
export function hasOlder(s, conv) {
  const c = s.convs[conv]
  return !!c && c.loaded && c.floor > 0
}

/**
 * cmd 22 for the page of history just below what is loaded (null: none, or busy).
 * @param {CoreState} s
 * @param {string} conv
 */
export function olderFrame(s, conv) {
  const c = s.convs[conv]
  if (!c || !c.loaded || c.floor <= 0 || c.loadingOlder) return null
  return historyRequest(s, c, s.pageSize)
}

/**
 * cmd 22 loading down to `seq` (a search hit) with a few messages of context, so the
 * loaded window stays contiguous; the store sends the follow-up pages applyHistory()
 * returns. Null when `seq` is loaded already (or the conversation is not yet).
 * @param {CoreState} s
 * @param {string} conv
 * @param {number} seq
 * @param {number} [context]
 */
export function jumpFrame(s, conv, seq, context = 10) {
  const c = s.convs[conv]
  if (!c || !c.loaded || c.loadingOlder) return null
  const until = Math.max(1, Number(seq) - context)
  if (until > c.floor) return null
  return historyRequest(s, c, Math.min(s.jumpPageSize, c.floor - until + 1), until)
}

/**
 * @param {CoreState} s
 * @param {Conv} c
 * @param {number} limit
 * @param {number} [until]
 */
function historyRequest(s, c, limit, until = 0) {
  const frame = historyFrame(c.conv, c.floor + 1, limit, newRid('h'))
  s.requests[frame.rid] = { kind: 'history', conv: c.conv, until }
  c.loadingOlder = true
  return frame
}

/**
 * Apply cmd 32; returns the next cmd 22 while loading down to a search hit, else null.
 * @param {CoreState} s
 * @param {{rid?: string, conv?: string, msgs?: unknown[], more?: boolean}} frame
 */
export function applyHistory(s, frame) {
  const req = (frame.rid && s.requests[frame.rid]) || { kind: 'history', conv: frame.conv, until: 0 }
  if (frame.rid) delete s.requests[frame.rid]
  const c = s.convs[req.conv || frame.conv]
  if (!c) return null
  const msgs = /** @type {Record<string, any>[]} */ ((frame.msgs || []).filter((m) => m && typeof m === 'object'))
  const before = c.floor
  const asOf = pageTop(msgs)
  for (const m of msgs) receive(s, { ...m, conv: c.conv }, { live: false, asOf })
  c.loadingOlder = false
  if (!frame.more) c.floor = 0 // nothing older exists
  else if (msgs.length && c.floor >= before) c.floor = Math.max(0, Number(msgs[0].seq) - 1)
  advanceContig(c)
  if (req.until && frame.more && c.floor >= req.until && c.floor < before) {
    return historyRequest(s, c, Math.min(s.jumpPageSize, c.floor - req.until + 1), req.until)
  }
  return null
}

/**
 * The highest seq of a page's messages (their state is as of then).
 * @param {Array<Record<string, any>>} msgs
 */
export function pageTop(msgs) {
  let top = 0
  for (const m of msgs) top = Math.max(top, Number(m?.seq) || 0)
  return top
}

// ---- recall -------------------------------------------------------------------------

/**
 * Mine, acked, not an event, and inside the recall window.
 * @param {CoreState} s
 * @param {Msg | null | undefined} msg
 */
export function canRecall(s, msg) {
  return !!msg && Number(msg.userid) === s.selfId && !!msg.id && !!msg.seq && !msg.recalled &&
    msg.state === SEND_STATE.SENT && Number(msg.media) !== MEDIA.EVENT &&
    s._now() - (Number(msg.ts) || 0) < s.recallWindowMs
}

/**
 * Mine, acked, text, not recalled, inside the edit window (cmd 50).
 * @param {CoreState} s
 * @param {Msg | null | undefined} msg
 */
export function canEdit(s, msg) {
  return !!msg && Number(msg.userid) === s.selfId && !!msg.id && !!msg.seq && !msg.recalled &&
    msg.state === SEND_STATE.SENT && Number(msg.media) === MEDIA.TEXT &&
    s._now() - (Number(msg.ts) || 0) < EDIT_WINDOW_MS
}

/**
 * What a reply quotes (docs/protocol.md "Replies"): drawn on my copy until the server's
 * comes back with the same fields.
 * @param {Msg} msg
 */
export function quoteOf(msg) {
  const media = Number(msg.media)
  const excerpt = media === MEDIA.TEXT ? String(msg.content || '').slice(0, 100) : ''
  return { id: Number(msg.id), seq: Number(msg.seq), userid: Number(msg.userid), media, excerpt }
}

/** @param {Msg} msg */
export function recallRequest(msg) {
  return recallFrame(msg.id, newRid('x'))
}

/**
 * cmd 36: a message was recalled (by its sender, on any device).
 * @param {CoreState} s
 * @param {{conv?: unknown, seq?: number, id?: number}} frame
 * @returns {Msg | null} the loaded message it erased
 */
export function applyRecalled(s, frame) {
  if (typeof frame.conv !== 'string') return null
  const c = ensureConv(s, frame.conv)
  const seq = Number(frame.seq) || 0
  const id = Number(frame.id) || 0
  const hit = c.msgs.find((m) => (seq && m.seq === seq) || (id && Number(m.id) === id))
  if (hit) eraseRecalled(hit)
  if (c.last && ((seq && c.last.seq === seq) || (id && Number(c.last.id) === id))) {
    c.last = eraseRecalled({ ...c.last })
  }
  return hit || null
}

/**
 * A recalled message keeps its place, loses its content (docs/protocol.md "Recall").
 * @param {Msg} m
 */
function eraseRecalled(m) {
  m.recalled = true
  m.content = ''
  m.pic = ''
  m.url = ''
  m.memo = ''
  return m
}

/**
 * Does `msg` mention `selfId` (by id or @all)?
 * @param {Record<string, any>} msg
 * @param {number} selfId
 */
export function mentionsMe(msg, selfId) {
  const m = msg.mentions
  return m === 'all' || (Array.isArray(m) && m.map(Number).includes(Number(selfId)))
}
