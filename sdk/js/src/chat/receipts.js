// Read state and what the others are doing: my read cursor and unread counts (cmd 23),
// the members' delivered/read markers (cmd 26 → 38, cmd 33) and typing (cmd 24, 34).

import { CMD, TYPING_INTERVAL_MS, newRid, readFrame, receiptsFrame, typingFrame as typingCmd } from '../protocol.js'
import { RECEIPT, SEND_STATE, ensureConv, isShown } from './state.js'

/** @typedef {import('./state.js').CoreState} CoreState */
/** @typedef {import('./state.js').Conv} Conv */
/** @typedef {import('./state.js').Msg} Msg */

const DEFAULT_TYPING_TTL_MS = 6000

// ---- my read cursor -----------------------------------------------------------------

/**
 * The user sees `conv`: everything known in it is read (sent by flushReads()).
 * @param {CoreState} s
 * @param {string} conv
 * @returns {boolean} whether the cursor moved
 */
export function markRead(s, conv) {
  const c = s.convs[conv]
  if (!c || !isShown(s, conv)) return false
  c.unread = 0
  c.mentioned = false
  return readUpTo(c, c.lastSeq)
}

/**
 * @param {Conv} c
 * @param {number} seq
 */
export function readUpTo(c, seq) {
  if (seq > c.readSeq) {
    c.readSeq = seq
    const left = c.lastSeq - seq
    if (c.unread > left) c.unread = Math.max(0, left)
    return true
  }
  return false
}

/**
 * cmd 23 frames for read cursors not yet told to the server (the store debounces).
 * @param {CoreState} s
 */
export function flushReads(s) {
  const frames = []
  for (const c of Object.values(s.convs)) {
    if (c.readSeq > c.readSent) {
      c.readSent = c.readSeq
      frames.push(readFrame(c.conv, c.readSeq))
    }
  }
  return frames
}

// ---- members' markers -----------------------------------------------------------------

/**
 * cmd 26: ask for the members' markers (when a chat opens).
 * @param {CoreState} s
 * @param {string} conv
 */
export function receiptsRequest(s, conv) {
  const frame = receiptsFrame(conv, newRid('r'))
  s.requests[frame.rid] = { kind: 'receipts', conv }
  return frame
}

/**
 * cmd 38: every member's delivered/read marker.
 * @param {CoreState} s
 * @param {{rid?: string, conv?: unknown, cursors?: Array<{userid: number, delivered_seq?: number, read_seq?: number}>}} frame
 */
export function applyReceiptList(s, frame) {
  if (frame.rid) delete s.requests[frame.rid]
  if (typeof frame.conv !== 'string') return
  const c = ensureConv(s, frame.conv)
  for (const cur of frame.cursors || []) {
    if (cur && cur.userid) cursor(s, c, cur.userid, cur.delivered_seq, cur.read_seq)
  }
  c.receiptsLoaded = true
}

/**
 * cmd 33: someone's markers moved (delivered only, or read too).
 * @param {CoreState} s
 * @param {{conv?: unknown, userid?: number, delivered_seq?: number, read_seq?: number}} frame
 */
export function applyReceipt(s, frame) {
  if (typeof frame.conv !== 'string' || !frame.userid) return
  cursor(s, ensureConv(s, frame.conv), frame.userid, frame.delivered_seq, frame.read_seq)
}

/**
 * Move a member's markers forward (never back). My own marker also moves my read cursor:
 * another device of mine read this far (or the list/receipts told us).
 * @param {CoreState} s
 * @param {Conv} c
 * @param {number | string} userid
 * @param {unknown} delivered
 * @param {unknown} read
 */
export function cursor(s, c, userid, delivered, read) {
  const uid = Number(userid)
  const d = Number(delivered) || 0
  const r = Number(read) || 0
  if (uid === s.selfId && r > c.readSeq) {
    c.readSeq = r
    if (r > c.readSent) c.readSent = r
    c.unread = Math.max(0, Math.min(c.unread, c.lastSeq - r))
  }
  const cur = c.cursors[uid] || (c.cursors[uid] = { delivered: 0, read: 0 })
  if (r > cur.read) cur.read = r
  if (Math.max(d, r) > cur.delivered) cur.delivered = Math.max(d, r)
}

/**
 * ✓/✓✓ of one of my 1:1 messages: '' (not mine, not acked), sent, delivered or read.
 * @param {CoreState} s
 * @param {Msg | null | undefined} msg
 */
export function receiptOf(s, msg) {
  if (!msg || Number(msg.userid) !== s.selfId || !msg.seq || msg.state !== SEND_STATE.SENT) return RECEIPT.NONE
  const c = s.convs[msg.conv]
  if (!c || c.cmd !== CMD.PRIVATE) return RECEIPT.NONE
  const cur = c.cursors[c.dstid]
  if (cur && cur.read >= msg.seq) return RECEIPT.READ
  if (cur && cur.delivered >= msg.seq) return RECEIPT.DELIVERED
  return RECEIPT.SENT
}

/**
 * How many members other than the sender have read `msg` (groups: "read by N").
 * @param {CoreState} s
 * @param {Msg | null | undefined} msg
 */
export function readBy(s, msg) {
  if (!msg || !msg.seq) return 0
  const c = s.convs[msg.conv]
  if (!c) return 0
  let n = 0
  for (const [uid, cur] of Object.entries(c.cursors)) {
    if (Number(uid) !== Number(msg.userid) && cur.read >= msg.seq) n += 1
  }
  return n
}

// ---- typing -------------------------------------------------------------------------

/**
 * cmd 24 for `conv`, at most one per TYPING_INTERVAL_MS; null when too soon.
 * @param {CoreState} s
 * @param {string} conv
 */
export function typingFrame(s, conv) {
  const now = s._now()
  const last = s.typingSentAt[conv] || 0
  if (last && now - last < TYPING_INTERVAL_MS) return null
  s.typingSentAt[conv] = now
  return typingCmd(conv)
}

/**
 * cmd 34: someone is typing (for `ttl` ms unless they send first).
 * @param {CoreState} s
 * @param {{conv?: unknown, userid?: number, ttl?: number}} frame
 */
export function applyTyping(s, frame) {
  const uid = Number(frame.userid)
  if (typeof frame.conv !== 'string' || !uid || uid === s.selfId) return
  const c = ensureConv(s, frame.conv)
  const ttl = Math.max(0, Number(frame.ttl) || DEFAULT_TYPING_TTL_MS)
  c.typing[uid] = s._now() + ttl
}

/**
 * Who is typing in `conv` now (their indicators expire by themselves).
 * @param {CoreState} s
 * @param {string} conv
 * @returns {number[]}
 */
export function typingUsers(s, conv) {
  const c = s.convs[conv]
  if (!c) return []
  const now = s._now()
  return Object.entries(c.typing).filter(([, until]) => until > now).map(([uid]) => Number(uid))
}

/**
 * Drop expired indicators; returns the time of the next expiry (0: none left).
 * @param {CoreState} s
 */
export function pruneTyping(s) {
  const now = s._now()
  let next = 0
  for (const c of Object.values(s.convs)) {
    for (const [uid, until] of Object.entries(c.typing)) {
      if (until <= now) delete c.typing[uid]
      else if (!next || until < next) next = until
    }
  }
  return next
}
