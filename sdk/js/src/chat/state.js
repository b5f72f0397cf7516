// The state the chat modules share: one record per conversation, the message shape,
// and the send/receipt states. ChatCore (../chatcore.js) owns an instance; the modules
// next to this file are functions over it, so the store's reactive() wrapper sees every
// mutation.

import { CMD, parseConv } from '../protocol.js'

export const SEND_STATE = Object.freeze({ PENDING: 'pending', FAILED: 'failed', SENT: 'sent' })
/** What the other side of a 1:1 conversation has done with one of my messages. */
export const RECEIPT = Object.freeze({ NONE: '', SENT: 'sent', DELIVERED: 'delivered', READ: 'read' })

/**
 * A message as shown: a server frame (cmd 10/11) plus where it stands locally.
 * @typedef {object} Msg
 * @property {string} conv
 * @property {number} seq          0 until acked
 * @property {number} [id]         server id
 * @property {string} [cid]        client id (my messages)
 * @property {number} cmd
 * @property {number} dstid
 * @property {number} userid
 * @property {number} media
 * @property {string} [content]
 * @property {string} [pic]
 * @property {string} [url]
 * @property {string} [memo]
 * @property {number} [amount]
 * @property {number} [ts]
 * @property {string} state        one of SEND_STATE
 * @property {boolean} [recalled]
 * @property {number} [edited_at]  when its text was last edited (an update "edited")
 * @property {Array<{emoji: string, count: number, users?: number[]}>} [reactions]
 * @property {boolean} [pinned]    pinned in its conversation (cmd 53)
 * @property {boolean} [forwarded]
 * @property {{id: number, seq: number, userid: number, media: number, excerpt: string, recalled?: boolean, deleted?: boolean}} [reply]
 * @property {number[] | 'all'} [mentions]
 * @property {boolean} [local]     composed here, not yet acked
 * @property {number} [asOf]       from a page: its state includes the updates up to this seq
 * @property {number} [sentAt]     when it last went out (0: not since the last disconnect)
 * @property {string} [error]      why it failed ('timeout' is retried on reconnect)
 * @property {string} [errorMsg]
 * @property {number} [errorCode]
 * @property {number} [retryAt]    when a retryable refusal (5030, 5000, 4290) lets it go out again
 * @property {number} [autoRetries] retryable refusals so far
 */

/**
 * @typedef {object} Conv
 * @property {string} conv
 * @property {number} cmd
 * @property {number} dstid
 * @property {Msg[]} msgs           acked/received messages, ascending seq
 * @property {Record<string, boolean>} seen  seq (or "id:<id>") → true, for dedupe
 * @property {Msg[]} pending        local messages without seq yet
 * @property {boolean} loaded       floor/contig are meaningful
 * @property {boolean} provisional  the window was started by a message that came before the
 *   conversation list (after a reload): the list still sets the initial window
 * @property {number} floor         messages with seq <= floor are not loaded
 * @property {number} contig        every seq in (floor, contig] is loaded
 * @property {number} lastSeq       highest seq known to exist
 * @property {Msg | null} last      last message (for the list)
 * @property {number} lastTs
 * @property {number} readSeq       my read cursor (server's read_seq, or what we told it)
 * @property {number} readSent      highest seq sent with cmd 23
 * @property {number} unread
 * @property {number} unreadBase    seqs <= unreadBase were counted by the server's list
 * @property {boolean} loadingOlder
 * @property {boolean} [pinned]     I pinned it to the top of my list (cmd 54)
 * @property {boolean} [muted]      I muted it (cmd 54): no notifications
 * @property {boolean} [mentioned]  an unread message mentions me
 * @property {number[]} [pins]      its pinned messages' ids, newest first (cmd 53)
 * @property {number} [pinsAsOf]    the seq `pins` is as of (the list's last_seq, or the update's)
 * @property {Record<number, {delivered: number, read: number}>} cursors  members' markers (cmd 33/38)
 * @property {boolean} receiptsLoaded
 * @property {Record<number, number>} typing  userid → time the indicator expires
 */

/**
 * @typedef {object} Request
 * @property {'sync' | 'history' | 'list' | 'receipts'} kind
 * @property {string} [conv]
 * @property {number} [until]   history: load down to this seq (a search hit)
 */

/**
 * What the modules read and write (ChatCore is one).
 * @typedef {object} CoreState
 * @property {number} selfId
 * @property {(frame: object) => boolean} _send   false when offline
 * @property {() => number} _now
 * @property {number} initialWindow
 * @property {number} pageSize
 * @property {number} jumpPageSize
 * @property {number} ackTimeoutMs
 * @property {number} recallWindowMs
 * @property {Record<string, Conv>} convs
 * @property {Msg[]} outbox          pending/failed local messages, oldest first
 * @property {string} activeConv
 * @property {boolean} visible       the page is shown (document.visibilityState)
 * @property {Record<string, Request>} requests  rid → what it asked for
 * @property {Record<string, number>} typingSentAt  conv → when we last sent cmd 24
 * @property {boolean} syncing
 * @property {boolean} listLoaded
 */

/**
 * @param {CoreState} s
 * @param {string} conv
 * @returns {Conv}
 */
export function ensureConv(s, conv) {
  let c = s.convs[conv]
  if (!c) {
    const parsed = parseConv(conv, s.selfId) || { cmd: CMD.PRIVATE, dstid: 0 }
    c = {
      conv,
      cmd: parsed.cmd,
      dstid: parsed.dstid,
      msgs: [],
      seen: {},
      pending: [],
      loaded: false,
      provisional: false,
      floor: 0,
      contig: 0,
      lastSeq: 0,
      last: null,
      lastTs: 0,
      readSeq: 0,
      readSent: 0,
      unread: 0,
      unreadBase: 0,
      loadingOlder: false,
      cursors: {},
      receiptsLoaded: false,
      typing: {},
    }
    s.convs[conv] = c
  }
  return c
}

/**
 * Is `conv` on screen right now (open, and the page visible)?
 * @param {CoreState} s
 * @param {string} conv
 */
export function isShown(s, conv) {
  return s.activeConv === conv && s.visible
}

// ---- the loaded window's primitives (used by window.js and outbox.js) ---------------

/**
 * The loaded window of a conversation not loaded before starts just below `seq`.
 * @param {Conv} c
 * @param {number} seq
 * @param {boolean} provisional  no conversation list yet (see Conv.provisional)
 */
export function startWindow(c, seq, provisional) {
  c.loaded = true
  c.provisional = provisional
  c.floor = seq - 1
  c.contig = seq - 1
}

/** @param {Conv} c */
export function advanceContig(c) {
  if (c.contig < c.floor) c.contig = c.floor
  while (c.seen[c.contig + 1]) c.contig += 1
}

/**
 * @param {Msg[]} list  ascending seq
 * @param {Msg} msg
 */
export function insertBySeq(list, msg) {
  let i = list.length
  while (i > 0 && (list[i - 1].seq || 0) > msg.seq) i -= 1
  list.splice(i, 0, msg)
}
