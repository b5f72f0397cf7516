// Catching up after (re)connecting: the conversation list (cmd 21 → 31), then sync
// pages from each conversation's contiguous cursor (cmd 20 → 30), and the bookkeeping
// of requests answered by rid.

import { convListFrame, messageConv, newRid, syncFrame } from '../protocol.js'
import { cursor, markRead } from './receipts.js'
import { SEND_STATE, advanceContig, ensureConv, isShown } from './state.js'
import { isOwnConv } from './updates.js'
import { pageTop, receive } from './window.js'

/** @typedef {import('./state.js').CoreState} CoreState */

/**
 * Frame asking for the conversation list (first step of a sync).
 * @param {CoreState} s
 */
export function requestConvList(s) {
  const rid = newRid('l')
  s.requests[rid] = { kind: 'list' }
  s.syncing = true
  return convListFrame(rid)
}

/**
 * Apply cmd 31; returns the cmd 20 frame for conversations with gaps, or null.
 * @param {CoreState} s
 * @param {{rid?: string, convs?: Array<Record<string, any>>, own?: {conv?: unknown, last_seq?: unknown}}} frame
 */
export function applyConvList(s, frame) {
  if (frame.rid) delete s.requests[frame.rid]
  s.listLoaded = true
  /** @type {Record<string, number>} */
  const after = {}
  for (const item of frame.convs || []) {
    if (!item || typeof item.conv !== 'string') continue
    const c = ensureConv(s, item.conv)
    if (item.cmd) c.cmd = Number(item.cmd)
    if (item.dstid) c.dstid = Number(item.dstid)
    // My settings of it (cmd 54), whether it mentions me, its pinned messages (cmd 53).
    c.pinned = !!item.pinned
    c.muted = !!item.muted
    c.mentioned = !!item.mentioned
    c.pins = Array.isArray(item.pins) ? item.pins.map(Number) : []
    c.pinsAsOf = Number(item.last_seq) || 0
    const lastSeq = Number(item.last_seq) || 0
    const serverRead = Number(item.read_seq) || 0
    if (lastSeq > c.lastSeq) c.lastSeq = lastSeq
    cursor(s, c, s.selfId, item.delivered_seq, serverRead)
    // We told the server more than it says (a cmd 23 in flight): send it again.
    if (c.readSeq > serverRead) c.readSent = serverRead
    if (item.last && typeof item.last === 'object') {
      const last = { ...item.last, conv: item.conv, seq: Number(item.last.seq) || lastSeq, state: SEND_STATE.SENT }
      if (!c.last || (c.last.seq || 0) <= last.seq) {
        c.last = c.pending.at(-1) || last
        c.lastTs = last.ts || c.lastTs
      }
    }
    if (isShown(s, item.conv)) {
      c.unread = 0
      markRead(s, item.conv)
    } else {
      // The server's count is the truth (less what we read since it was computed).
      const serverUnread = item.unread === undefined ? lastSeq - serverRead : Math.max(0, Number(item.unread) || 0)
      c.unread = Math.max(0, Math.min(serverUnread, lastSeq - c.readSeq))
    }
    c.unreadBase = Math.max(c.unreadBase, lastSeq)
    // The initial window: the last `initialWindow` messages, also when a live message
    // that beat this list (a reload while the peer writes) started a narrower one, which
    // would leave the chat showing only that message.
    const initialFloor = Math.max(0, lastSeq - s.initialWindow)
    if (!c.loaded || (c.provisional && c.floor > initialFloor)) {
      c.loaded = true
      c.floor = initialFloor
      c.contig = initialFloor
      advanceContig(c)
    }
    c.provisional = false
    if (lastSeq > c.contig) after[item.conv] = c.contig
  }
  // My own stream (hidden, cleared, conversation settings): the list is its state so
  // far, so a first load starts at its end; after that it syncs with the others, and
  // a device that was offline learns what my other devices did.
  const own = frame.own
  if (own && typeof own.conv === 'string' && isOwnConv(own.conv)) {
    const c = ensureConv(s, own.conv)
    const lastSeq = Number(own.last_seq) || 0
    if (!c.loaded) {
      c.loaded = true
      c.floor = lastSeq
      c.contig = lastSeq
      advanceContig(c)
    }
    c.provisional = false
    if (lastSeq > c.lastSeq) c.lastSeq = lastSeq
    if (lastSeq > c.contig) after[own.conv] = c.contig
  }
  if (!Object.keys(after).length) {
    s.syncing = false
    return null
  }
  return syncRequest(s, after)
}

/**
 * Sync every loaded conversation (or only `onlyConv`) from its contiguous cursor
 * (cmd 37, a seq gap).
 * @param {CoreState} s
 * @param {string} [onlyConv]
 */
export function resyncFrame(s, onlyConv) {
  /** @type {Record<string, number>} */
  const after = {}
  for (const c of Object.values(s.convs)) {
    if (onlyConv && c.conv !== onlyConv) continue
    if (c.loaded) after[c.conv] = c.contig
  }
  if (!Object.keys(after).length) return null
  return syncRequest(s, after)
}

/**
 * @param {CoreState} s
 * @param {Record<string, number>} after  conv → the seq to sync after
 */
function syncRequest(s, after) {
  const rid = newRid('s')
  s.requests[rid] = { kind: 'sync' }
  s.syncing = true
  return syncFrame(after, 0, rid)
}

/**
 * Apply cmd 30. Returns the next cmd 20 frame while `more` is true (sync paging), or
 * null when done.
 * @param {CoreState} s
 * @param {{rid?: string, msgs?: unknown[], more?: boolean, after?: Record<string, number>}} frame
 */
export function applySyncPage(s, frame) {
  if (frame.rid) delete s.requests[frame.rid]
  const msgs = /** @type {Record<string, any>[]} */ ((frame.msgs || []).filter((m) => m && typeof m === 'object'))
  // Per conversation: its messages' state is as of the page's last seq there.
  /** @type {Record<string, Record<string, any>[]>} */
  const byConv = {}
  for (const m of msgs) (byConv[messageConv(m, s.selfId)] ||= []).push(m)
  for (const list of Object.values(byConv)) {
    const asOf = pageTop(list)
    for (const m of list) receive(s, m, { live: false, asOf })
  }
  if (frame.more && frame.after && typeof frame.after === 'object' && Object.keys(frame.after).length) {
    return syncRequest(s, frame.after)
  }
  if (frame.more) {
    const next = resyncFrame(s)
    if (next) return next
  }
  s.syncing = stillSyncing(s)
  return null
}

/**
 * A request failed (cmd 2 with its rid): forget it.
 * @param {CoreState} s
 * @param {string} rid
 */
export function failRequest(s, rid) {
  const req = s.requests[rid]
  if (!req) return null
  delete s.requests[rid]
  if (req.kind === 'history' && req.conv && s.convs[req.conv]) s.convs[req.conv].loadingOlder = false
  if (req.kind === 'sync' || req.kind === 'list') s.syncing = stillSyncing(s)
  return req
}

/** @param {CoreState} s */
function stillSyncing(s) {
  return Object.values(s.requests).some((r) => r.kind === 'sync' || r.kind === 'list')
}
