// My outgoing messages until the server acks them (cmd 10/11 → 3, or cmd 2 by cid):
// queued while offline, resent with the same cid after a reconnect (the server
// deduplicates by cid), failed after the ack timeout or a refusal.

import { buildMessageFrame, convId, newCid } from '../protocol.js'
import { readUpTo } from './receipts.js'
import { SEND_STATE, advanceContig, ensureConv, insertBySeq, startWindow } from './state.js'

/** @typedef {import('./state.js').CoreState} CoreState */
/** @typedef {import('./state.js').Conv} Conv */
/** @typedef {import('./state.js').Msg} Msg */

/**
 * Queue a message (cmd 10/11) and send it now if connected. Returns the local message.
 * @param {CoreState} s
 * @param {{cmd: number, dstid: number | string, media: number} & Record<string, any>} body
 * @returns {Msg}
 */
export function compose(s, { cmd, dstid, media, ...body }) {
  const c = ensureConv(s, convId(cmd, s.selfId, dstid))
  const msg = {
    cid: newCid(s._now()),
    cmd,
    dstid: Number(dstid),
    media,
    ...body,
    userid: s.selfId,
    conv: c.conv,
    seq: 0,
    ts: s._now(),
    state: SEND_STATE.PENDING,
    sentAt: 0,
    error: '',
    local: true,
  }
  buildMessageFrame(msg) // validate now, not at send time
  c.pending.push(msg)
  s.outbox.push(msg)
  c.last = msg
  c.lastTs = msg.ts
  transmit(s, msg)
  return msg
}

/**
 * @param {CoreState} s
 * @param {Msg} msg
 */
function transmit(s, msg) {
  const ok = s._send(buildMessageFrame(msg))
  if (ok) msg.sentAt = s._now()
  return ok
}

/**
 * Resend a failed (or stuck) message with the same cid.
 * @param {CoreState} s
 * @param {string} cid
 */
export function retry(s, cid) {
  const msg = s.outbox.find((m) => m.cid === cid)
  if (!msg) return false
  msg.state = SEND_STATE.PENDING
  msg.error = ''
  msg.sentAt = 0
  transmit(s, msg)
  return true
}

/**
 * Drop a failed message the user gave up on.
 * @param {CoreState} s
 * @param {string} cid
 */
export function discard(s, cid) {
  settlePending(s, cid)
}

/**
 * After (re)connecting: resend everything still pending, oldest first, same cids.
 * @param {CoreState} s
 */
export function flushOutbox(s) {
  for (const msg of s.outbox) {
    if (msg.state === SEND_STATE.PENDING || msg.error === 'timeout') {
      msg.state = SEND_STATE.PENDING
      msg.error = ''
      transmit(s, msg)
    }
  }
}

/**
 * Connection lost: what was sent but not acked will be resent on reconnect.
 * @param {CoreState} s
 */
export function onDisconnect(s) {
  for (const msg of s.outbox) if (msg.state === SEND_STATE.PENDING) msg.sentAt = 0
}

// Refusals that say "not stored, try again": the message is resent with its cid after
// `retry_after` (or a second), a few times, before the user is asked.
const RETRYABLE = new Set(['overloaded', 'internal', 'rate_limited'])
export const AUTO_RETRIES = 5

/**
 * Mark sent-but-unacked messages older than the ack timeout as failed; resend those a
 * retryable refusal put off whose time has come.
 * @param {CoreState} s
 */
export function checkTimeouts(s) {
  const now = s._now()
  for (const msg of s.outbox) {
    if (msg.state === SEND_STATE.PENDING && msg.retryAt && now >= msg.retryAt) {
      msg.retryAt = 0
      transmit(s, msg)
    } else if (msg.state === SEND_STATE.PENDING && msg.sentAt && now - msg.sentAt > s.ackTimeoutMs) {
      msg.state = SEND_STATE.FAILED
      msg.error = 'timeout'
    }
  }
}

/**
 * cmd 3: the server stored one of my messages; it moves from the outbox into the window.
 * @param {CoreState} s
 * @param {{cid?: string, conv?: string, id?: number, seq?: number, ts?: number}} frame
 * @returns {Msg | null} the acked message (null: not one of ours)
 */
export function onAck(s, frame) {
  const msg = s.outbox.find((m) => m.cid === frame.cid)
  if (!msg) return null
  removePending(s, msg)
  const conv = frame.conv || msg.conv
  const c = ensureConv(s, conv)
  const seq = Number(frame.seq) || 0
  const acked = { ...msg, id: frame.id, seq, ts: frame.ts || msg.ts, conv, state: SEND_STATE.SENT, local: false }
  delete acked.sentAt
  delete acked.error
  if (seq && c.seen[seq]) return acked // already arrived through a sync page
  if (seq) {
    if (!c.loaded) startWindow(c, seq, !s.listLoaded)
    c.seen[seq] = true
    insertBySeq(c.msgs, acked)
    advanceContig(c)
    if (seq > c.lastSeq) c.lastSeq = seq
  } else {
    c.msgs.push(acked)
  }
  if (!c.last || c.last === msg || (c.last.seq || 0) <= seq) {
    c.last = acked
    c.lastTs = acked.ts
  }
  if (seq) readUpTo(c, seq)
  return acked
}

/**
 * cmd 2 carrying a cid: the server refused one of my messages. A retryable refusal
 * (5030 overloaded, 5000 internal, 4290 rate_limited) keeps it pending and resends it
 * after `retry_after` seconds (checkTimeouts), at most AUTO_RETRIES times.
 * @param {CoreState} s
 * @param {{cid?: string, error?: string, msg?: string, code?: number, retry_after?: number}} frame
 * @returns {Msg | null}
 */
export function onError(s, frame) {
  if (!frame.cid) return null
  const msg = s.outbox.find((m) => m.cid === frame.cid)
  if (!msg) return null
  if (RETRYABLE.has(frame.error || '') && (msg.autoRetries || 0) < AUTO_RETRIES) {
    msg.autoRetries = (msg.autoRetries || 0) + 1
    msg.sentAt = 0
    msg.retryAt = s._now() + Math.max(1, Number(frame.retry_after) || 1) * 1000
    return msg
  }
  msg.state = SEND_STATE.FAILED
  msg.error = frame.error || 'error'
  msg.errorMsg = frame.msg || ''
  msg.errorCode = frame.code || 0
  return msg
}

/**
 * The message with `cid` is no longer pending (it came back through a sync page, or
 * the user discarded it).
 * @param {CoreState} s
 * @param {string} cid
 */
export function settlePending(s, cid) {
  const msg = s.outbox.find((m) => m.cid === cid)
  if (msg) removePending(s, msg)
}

/**
 * @param {CoreState} s
 * @param {Msg} msg
 */
function removePending(s, msg) {
  s.outbox = s.outbox.filter((m) => m !== msg)
  const c = s.convs[msg.conv]
  if (c) {
    c.pending = c.pending.filter((m) => m !== msg)
    if (c.last === msg) {
      c.last = c.pending.at(-1) || c.msgs.at(-1) || null
      c.lastTs = c.last?.ts || 0
    }
  }
}
