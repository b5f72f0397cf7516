// ImhubClient: the protocol core wired together for a page or a Node process without
// a framework — one Connection (reconnect with backoff, heartbeat) feeding one ChatCore
// (windows, sync, outbox with cid retry, receipts, typing), with a small event API.
// The web client wires the same two pieces into its Pinia store (frontend/src/stores/chat.js).

import { readUpTo } from './chat/receipts.js'
import { ChatCore } from './chatcore.js'
import { Connection, STATE } from './connection.js'
import { isUpdate } from './chat/updates.js'
import {
  CMD, MEDIA, convSettingsFrame, editFrame, forwardFrame, hideFrame, messageConv, parseConv, pinFrame, reactFrame,
} from './protocol.js'

/**
 * @typedef {'message'|'updated'|'ack'|'error'|'receipt'|'typing'|'presence'|'recalled'|'notice'|'state'|'loggedout'|'frame'} EventName
 */

export class ImhubClient {
  /**
   * @param {object} o
   * @param {string} o.url          imhub's base URL (http(s)://host[:port]); the socket is <url>/chat
   * @param {number} o.userId
   * @param {string} [o.token]      login token (omit on imhub's own origin: the session cookie is used)
   * @param {any} [o.WebSocket]     WebSocket implementation (default: the global one)
   * @param {number} [o.heartbeatMs]
   * @param {{base?: number, max?: number}} [o.backoff]  reconnect delays, ms (see backoff.js)
   * @param {number} [o.ackTimeoutMs]  a message without ack after this is 'failed' (retry() resends it)
   * @param {number} [o.checkEveryMs]  how often ack timeouts and typing expiry are checked
   */
  constructor(o) {
    this.url = String(o.url).replace(/\/+$/, '')
    this.userId = Number(o.userId)
    this.token = o.token || ''
    this.checkEveryMs = o.checkEveryMs ?? 1000
    /** @type {Record<string, Set<Function>>} */
    this._listeners = {}
    this._waiting = new Map() // rid -> {resolve, reject, timer}
    this._timer = null
    this.core = new ChatCore({ selfId: this.userId, send: (f) => this._send(f), ackTimeoutMs: o.ackTimeoutMs })
    this.connection = new Connection({
      url: () => this.socketUrl(),
      WebSocketImpl: o.WebSocket,
      heartbeatMs: o.heartbeatMs,
      backoff: o.backoff,
      onFrame: (f) => this._onFrame(f),
      onOpen: () => {
        this.core.flushOutbox()
        this._send(this.core.requestConvList())
      },
      onState: (state, info) => {
        if (state !== STATE.OPEN) this.core.onDisconnect()
        this._emit('state', state, info)
      },
      onLoggedOut: (code) => this._emit('loggedout', code),
    })
  }

  /** The WebSocket URL: v=2 (this protocol), autosync=0 (the core syncs itself). */
  socketUrl() {
    const q = new URLSearchParams({ id: String(this.userId), v: '2', autosync: '0' })
    if (this.token) q.set('token', this.token)
    return `${this.url.replace(/^http/, 'ws')}/chat?${q}`
  }

  /**
   * Listen to an event; returns a function that stops listening.
   * - `message` (msg, {conv, live}): a message added to a conversation (live or by sync), once per (conv, seq)
   * - `updated` (update, {conv, live}): an update (media 11: an edit, reactions, a pin; in
   *   your own stream `u<id>`, what you hid and your conversation settings) was applied:
   *   the messages it names in `core.convs[conv]` (or the conversation) changed
   * - `ack` (frame), `error` (frame): outcomes of sends and requests
   * - `receipt`, `typing`, `presence`, `recalled`, `notice` (frame): events of docs/protocol.md
   * - `state` (state, info): 'connecting' | 'open' | 'waiting' | 'closed'
   * - `loggedout` (code): the token was revoked (4001); the client stopped
   * - `frame` (frame): every frame, before the above
   * @param {EventName} event
   * @param {Function} fn
   */
  on(event, fn) {
    const set = (this._listeners[event] ||= new Set())
    set.add(fn)
    return () => set.delete(fn)
  }

  /** @param {string} event @param {...any} args */
  _emit(event, ...args) {
    for (const fn of this._listeners[event] || []) {
      try {
        fn(...args)
      } catch (err) {
        setTimeout(() => { throw err }) // a listener's bug must not break the client
      }
    }
  }

  get state() {
    return this.connection.state
  }

  start() {
    this.connection.start()
    if (!this._timer) {
      this._timer = setInterval(() => {
        this.core.checkTimeouts()
        this.core.pruneTyping() // expired indicators leave core.typingUsers(conv)
      }, this.checkEveryMs)
    }
  }

  stop() {
    clearInterval(this._timer)
    this._timer = null
    this.connection.stop()
    for (const w of this._waiting.values()) {
      clearTimeout(w.timer)
      w.reject(new Error('stopped'))
    }
    this._waiting.clear()
  }

  /** @param {Record<string, any> | null} frame */
  _send(frame) {
    return frame ? this.connection.send(frame) : false
  }

  /**
   * Send a message (any media). Returns the pending message: its `state` goes
   * 'pending' → 'sent' (acked; `seq` set) or 'failed'; while offline it waits in the
   * outbox and goes out, with the same cid, when the connection is back.
   * @param {{cmd: number, dstid: number, media: number} & Record<string, any>} body
   */
  send(body) {
    return this.core.compose(body)
  }

  /**
   * Send a text to a conversation (`p3_7`, `g12`) or to `{user}` / `{group}`.
   * @param {string | {user?: number, group?: number}} to
   * @param {string} text
   */
  sendText(to, text) {
    const target = typeof to === 'string' ? parseConv(to, this.userId)
      : to.group ? { cmd: CMD.GROUP, dstid: Number(to.group) } : { cmd: CMD.PRIVATE, dstid: Number(to.user) }
    if (!target) throw new Error(`not a conversation: ${to}`)
    return this.send({ ...target, media: MEDIA.TEXT, content: text })
  }

  /** Resend a failed message (same cid). @param {string} cid */
  retry(cid) {
    return this.core.retry(cid)
  }

  /** Mark a conversation read up to its newest message (cmd 23). @param {string} conv */
  markRead(conv) {
    const c = this.core.convs[conv]
    if (!c) return
    c.unread = 0
    readUpTo(c, c.lastSeq)
    for (const f of this.core.flushReads()) this._send(f)
  }

  /**
   * A UI shows `conv` (while shown, and the page visible, it counts as read); close()
   * when it no longer does. @param {string} conv
   */
  open(conv) {
    const c = this.core.open(conv)
    for (const f of this.core.flushReads()) this._send(f)
    return c
  }

  /** @param {string} conv */
  close(conv) {
    this.core.close(conv)
  }

  /** Tell the others you are typing (throttled as the server wants). @param {string} conv */
  typing(conv) {
    this._send(this.core.typingFrame(conv))
  }

  // ---- changes (cmd 50–55): each resolves with the cmd 43 answer, whose update (`msg`)
  // is applied to the core first; the other devices and members get it live -----------

  /** Edit my text message. @param {number} id @param {string} content */
  edit(id, content) {
    return this.request(editFrame(id, content))
  }

  /** Add my reaction (or take it back: `add` false). @param {number} id @param {string} emoji @param {boolean} [add] */
  react(id, emoji, add = true) {
    return this.request(reactFrame(id, emoji, add))
  }

  /** Delete messages for me (my devices only). @param {number[]} ids */
  hide(ids) {
    return this.request(hideFrame({ ids }))
  }

  /** Delete a whole conversation so far, for me. @param {string} conv */
  hideConv(conv) {
    return this.request(hideFrame({ conv }))
  }

  /** Pin a message in its conversation (or unpin: `pinned` false). @param {number} id @param {boolean} [pinned] */
  pin(id, pinned = true) {
    return this.request(pinFrame(id, pinned))
  }

  /**
   * My settings of a conversation: pinned to the top of my list, muted.
   * @param {string} conv
   * @param {{pinned?: boolean, muted?: boolean}} settings
   */
  convSettings(conv, settings) {
    return this.request(convSettingsFrame(conv, settings))
  }

  /**
   * Forward messages (oldest first: the order they arrive in) to conversations.
   * @param {number[]} ids
   * @param {string[]} to
   */
  forward(ids, to) {
    return this.request(forwardFrame(ids, to))
  }

  /** Load the page of history below what is loaded (cmd 22). @param {string} conv */
  loadOlder(conv) {
    return this._send(this.core.olderFrame(conv))
  }

  /**
   * Send a request frame and resolve with the reply carrying its rid (cmd 2 rejects).
   * @param {Record<string, any>} frame
   * @param {number} [timeoutMs]
   */
  request(frame, timeoutMs = 15000) {
    const rid = frame.rid || `q${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`
    return new Promise((resolve, reject) => {
      if (!this._send({ ...frame, rid })) {
        reject(new Error('offline'))
        return
      }
      const timer = setTimeout(() => {
        this._waiting.delete(rid)
        reject(new Error('timeout'))
      }, timeoutMs)
      this._waiting.set(rid, { resolve, reject, timer })
    })
  }

  /** @param {Record<string, any>} frame */
  _settle(frame) {
    const w = frame.rid !== undefined && this._waiting.get(frame.rid)
    if (!w) return false
    this._waiting.delete(frame.rid)
    clearTimeout(w.timer)
    if (frame.cmd === CMD.ERROR) w.reject(Object.assign(new Error(frame.msg || frame.error), { frame }))
    else w.resolve(frame)
    return true
  }

  /** @param {Record<string, any>} frame */
  _onFrame(frame) {
    const c = this.core
    this._emit('frame', frame)
    switch (frame.cmd) {
      case CMD.HEARTBEAT:
        return
      case CMD.ACK: {
        // Only an ack that settles one of our pending messages (a resend's second
        // ack, `dup: true`, finds it settled already).
        const msg = c.onAck(frame)
        if (msg) this._emit('ack', frame, msg)
        return
      }
      case CMD.ERROR:
        if (this._settle(frame)) return
        if (frame.rid && c.failRequest(frame.rid)) return
        c.onError(frame)
        this._emit('error', frame)
        return
      case CMD.PRIVATE:
      case CMD.GROUP: {
        const r = c.receive(frame)
        if (r.gap) this._send(c.resyncFrame(r.conv))
        if (r.added) this._emit('message', r.msg, { conv: r.conv, live: true })
        else if (r.changed) this._emit('updated', r.msg, { conv: r.conv, live: true })
        return
      }
      case CMD.CHANGED: {
        // The answer to cmd 50–55: this connection gets the update only here.
        if (frame.msg && typeof frame.msg === 'object') {
          const r = c.receive(frame.msg)
          if (r.gap) this._send(c.resyncFrame(r.conv))
          if (r.changed) this._emit('updated', r.msg, { conv: r.conv, live: true })
        }
        this._settle(frame)
        return
      }
      case CMD.SYNC_PAGE:
      case CMD.HISTORY_PAGE: {
        const fresh = this._unseen(frame.msgs)
        this._send(frame.cmd === CMD.SYNC_PAGE ? c.applySyncPage(frame) : c.applyHistory(frame))
        for (const [conv, m] of fresh) {
          if (isUpdate(m)) {
            this._emit('updated', { ...m, conv, seq: Number(m.seq) }, { conv, live: false })
            continue
          }
          const msg = c.convs[conv]?.msgs.find((x) => x.seq === Number(m.seq)) || m
          this._emit('message', msg, { conv, live: false })
        }
        this._settle(frame)
        return
      }
      case CMD.CONV_LIST_REPLY:
        this._send(c.applyConvList(frame))
        this._settle(frame)
        return
      case CMD.RECEIPT:
        c.applyReceipt(frame)
        this._emit('receipt', frame)
        return
      case CMD.RECEIPT_LIST:
        c.applyReceiptList(frame)
        this._settle(frame)
        return
      case CMD.TYPING_EVENT:
        c.applyTyping(frame)
        this._emit('typing', frame)
        return
      case CMD.PRESENCE:
        this._emit('presence', frame)
        return
      case CMD.RECALLED:
        c.applyRecalled(frame)
        this._settle(frame)
        this._emit('recalled', frame)
        return
      case CMD.RESYNC:
        this._send(c.requestConvList())
        return
      case CMD.NOTICE:
        this._emit('notice', frame)
        return
      default:
        this._settle(frame) // search results and commands newer than this SDK
    }
  }

  /**
   * Messages of a page that are not in their conversation yet.
   * @param {unknown} msgs
   * @returns {Array<[string, Record<string, any>]>}
   */
  _unseen(msgs) {
    const out = []
    for (const m of Array.isArray(msgs) ? msgs : []) {
      if (!m || typeof m !== 'object' || !m.seq) continue
      const conv = messageConv(m, this.userId)
      if (!this.core.convs[conv]?.seen[Number(m.seq)]) out.push([conv, m])
    }
    return out
  }
}
