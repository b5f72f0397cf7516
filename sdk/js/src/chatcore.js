// Conversation state without Vue, one object the Pinia store wraps in reactive(). The
// work is done by the modules in ./chat/ (functions over this object, so every mutation
// goes through the reactive proxy):
//   chat/window.js    loaded messages per conversation, history pages, recall
//   chat/outbox.js    my messages until acked: queue, resend, timeouts
//   chat/receipts.js  my read cursor and unread counts, members' markers, typing
//   chat/sync.js      conversation list and sync paging after (re)connecting
// The protocol is docs/protocol.md's (cmd 20/21/22 → 30/31/32, 23–26 → 33–38).

import { RECALL_WINDOW_MS, convId } from './protocol.js'
import * as outbox from './chat/outbox.js'
import * as receipts from './chat/receipts.js'
import { ensureConv } from './chat/state.js'
import * as sync from './chat/sync.js'
import * as win from './chat/window.js'

export { RECEIPT, SEND_STATE } from './chat/state.js'

/** @typedef {import('./chat/state.js').Conv} Conv */
/** @typedef {import('./chat/state.js').Msg} Msg */
/** @typedef {import('./chat/state.js').Request} Request */
/** @typedef {import('./chat/state.js').CoreState} CoreState */

/** @implements {CoreState} */
export class ChatCore {
  /**
   * @param {object} o
   * @param {number} o.selfId
   * @param {(frame: object) => boolean} o.send   returns false when offline
   * @param {() => number} [o.now]
   * @param {number} [o.initialWindow]  messages fetched for a conversation never loaded
   * @param {number} [o.pageSize]       messages per history page
   * @param {number} [o.jumpPageSize]   messages per history page while loading down to a search hit
   * @param {number} [o.ackTimeoutMs]   a sent message without ack after this is "failed"
   * @param {number} [o.recallWindowMs]
   */
  constructor(o) {
    this.selfId = Number(o.selfId)
    this._send = o.send
    this._now = o.now || (() => Date.now())
    this.initialWindow = o.initialWindow ?? 30
    this.pageSize = o.pageSize ?? 50
    this.jumpPageSize = o.jumpPageSize ?? 100
    this.ackTimeoutMs = o.ackTimeoutMs ?? 15000
    this.recallWindowMs = o.recallWindowMs ?? RECALL_WINDOW_MS
    /** @type {Record<string, Conv>} conv id → conversation */
    this.convs = {}
    /** @type {Msg[]} pending/failed local messages, oldest first */
    this.outbox = []
    this.activeConv = ''
    this.visible = true // the page is shown (document.visibilityState)
    /** @type {Record<string, Request>} rid → what it asked for */
    this.requests = {}
    /** @type {Record<string, number>} conv → when we last sent cmd 24 */
    this.typingSentAt = {}
    this.syncing = false
    this.listLoaded = false
  }

  // ---- conversations --------------------------------------------------------------

  /** @param {string} conv */
  ensureConv(conv) {
    return ensureConv(this, conv)
  }

  /**
   * @param {number} cmd
   * @param {number} dstid
   */
  convFor(cmd, dstid) {
    return ensureConv(this, convId(cmd, this.selfId, dstid))
  }

  /** Conversations with something to show in the list, pinned ones first, then newest first. */
  get sortedConvs() {
    return Object.values(this.convs)
      .filter((c) => c.last || c.pending.length)
      .sort((a, b) => Number(!!b.pinned) - Number(!!a.pinned) || convTime(b) - convTime(a))
  }

  get totalUnread() {
    let n = 0
    for (const c of Object.values(this.convs)) n += c.unread
    return n
  }

  /**
   * Start showing `conv`: it counts as read while active and the page is visible.
   * @param {string} conv
   */
  open(conv) {
    this.activeConv = conv
    const c = ensureConv(this, conv)
    if (!c.loaded && !c.lastSeq && this.listLoaded) {
      c.loaded = true // not in the server's list: a brand-new conversation, nothing to fetch
    }
    receipts.markRead(this, conv)
    return c
  }

  /** @param {string} conv */
  close(conv) {
    if (this.activeConv === conv) this.activeConv = ''
  }

  /**
   * The page was hidden or shown again (reading resumes when it is shown).
   * @param {boolean} visible
   */
  setVisible(visible) {
    this.visible = !!visible
    if (this.visible && this.activeConv) receipts.markRead(this, this.activeConv)
  }

  // ---- chat/receipts.js -----------------------------------------------------------

  /** @param {string} conv */
  markRead(conv) { return receipts.markRead(this, conv) }
  flushReads() { return receipts.flushReads(this) }
  /** @param {string} conv */
  receiptsRequest(conv) { return receipts.receiptsRequest(this, conv) }
  /** @param {Parameters<typeof receipts.applyReceiptList>[1]} frame */
  applyReceiptList(frame) { return receipts.applyReceiptList(this, frame) }
  /** @param {Parameters<typeof receipts.applyReceipt>[1]} frame */
  applyReceipt(frame) { return receipts.applyReceipt(this, frame) }
  /** @param {Msg | null | undefined} msg */
  receiptOf(msg) { return receipts.receiptOf(this, msg) }
  /** @param {Msg | null | undefined} msg */
  readBy(msg) { return receipts.readBy(this, msg) }
  /** @param {string} conv */
  typingFrame(conv) { return receipts.typingFrame(this, conv) }
  /** @param {Parameters<typeof receipts.applyTyping>[1]} frame */
  applyTyping(frame) { return receipts.applyTyping(this, frame) }
  /** @param {string} conv */
  typingUsers(conv) { return receipts.typingUsers(this, conv) }
  pruneTyping() { return receipts.pruneTyping(this) }

  // ---- chat/window.js -------------------------------------------------------------

  /**
   * @param {Record<string, any>} frame
   * @param {{live?: boolean}} [o]
   */
  receive(frame, o) { return win.receive(this, frame, o) }
  /** @param {string} conv */
  hasOlder(conv) { return win.hasOlder(this, conv) }
  /** @param {string} conv */
  olderFrame(conv) { return win.olderFrame(this, conv) }
  /**
   * @param {string} conv
   * @param {number} seq
   * @param {number} [context]
   */
  jumpFrame(conv, seq, context) { return win.jumpFrame(this, conv, seq, context) }
  /** @param {Parameters<typeof win.applyHistory>[1]} frame */
  applyHistory(frame) { return win.applyHistory(this, frame) }
  /** @param {Msg | null | undefined} msg */
  canRecall(msg) { return win.canRecall(this, msg) }
  /** @param {Msg} msg */
  recallRequest(msg) { return win.recallRequest(msg) }
  /** @param {Msg | null | undefined} msg */
  canEdit(msg) { return win.canEdit(this, msg) }
  /** @param {Parameters<typeof win.applyRecalled>[1]} frame */
  applyRecalled(frame) { return win.applyRecalled(this, frame) }

  // ---- chat/outbox.js -------------------------------------------------------------

  /** @param {Parameters<typeof outbox.compose>[1]} body */
  compose(body) { return outbox.compose(this, body) }
  /** @param {string} cid */
  retry(cid) { return outbox.retry(this, cid) }
  /** @param {string} cid */
  discard(cid) { return outbox.discard(this, cid) }
  flushOutbox() { return outbox.flushOutbox(this) }
  onDisconnect() { return outbox.onDisconnect(this) }
  checkTimeouts() { return outbox.checkTimeouts(this) }
  /** @param {Parameters<typeof outbox.onAck>[1]} frame */
  onAck(frame) { return outbox.onAck(this, frame) }
  /** @param {Parameters<typeof outbox.onError>[1]} frame */
  onError(frame) { return outbox.onError(this, frame) }

  // ---- chat/sync.js ---------------------------------------------------------------

  requestConvList() { return sync.requestConvList(this) }
  /** @param {Parameters<typeof sync.applyConvList>[1]} frame */
  applyConvList(frame) { return sync.applyConvList(this, frame) }
  /** @param {string} [onlyConv] */
  resyncFrame(onlyConv) { return sync.resyncFrame(this, onlyConv) }
  /** @param {Parameters<typeof sync.applySyncPage>[1]} frame */
  applySyncPage(frame) { return sync.applySyncPage(this, frame) }
  /** @param {string} rid */
  failRequest(rid) { return sync.failRequest(this, rid) }
}

/** @param {Conv} c */
function convTime(c) {
  return c.last?.ts || c.lastTs || 0
}
