// Conversation state without Vue: messages ordered by seq and deduplicated by
// (conv, seq), the outbox of pending/failed outgoing messages (acked by cid), unread
// counters, and the sync/history requests of docs/protocol.md (cmd 20/21 → 30/31).
// The Pinia store wraps an instance in reactive(); every method mutates through `this`.
//
// Later server features slot in here: delivered/read marks (per-conv cursors next to
// readSeq), typing (conv.typing), recall (msg.recalled, see summary()), search.

import {
  CMD, buildMessageFrame, convId, convListFrame, messageConv, newCid, newRid, parseConv, syncFrame,
} from './protocol.js'

export const SEND_STATE = Object.freeze({ PENDING: 'pending', FAILED: 'failed', SENT: 'sent' })

export class ChatCore {
  /**
   * @param {object} o
   * @param {number} o.selfId
   * @param {(frame: object) => boolean} o.send   returns false when offline
   * @param {() => number} [o.now]
   * @param {number} [o.initialWindow]  messages fetched for a conversation never loaded
   * @param {number} [o.pageSize]       messages per history page
   * @param {number} [o.ackTimeoutMs]   a sent message without ack after this is "failed"
   * @param {Record<string, number>} [o.readSeqs] local read cursors (persisted by the caller)
   */
  constructor(o) {
    this.selfId = Number(o.selfId)
    this._send = o.send
    this._now = o.now || (() => Date.now())
    this.initialWindow = o.initialWindow ?? 30
    this.pageSize = o.pageSize ?? 50
    this.ackTimeoutMs = o.ackTimeoutMs ?? 15000
    this.readSeqs = { ...(o.readSeqs || {}) }
    this.convs = {} // conv id → conversation
    this.outbox = [] // pending/failed local messages, oldest first
    this.activeConv = ''
    this.requests = {} // rid → {kind: 'sync'|'history'|'list', conv?}
    this.syncing = false
    this.listLoaded = false
  }

  // ---- conversations --------------------------------------------------------------

  ensureConv(conv) {
    let c = this.convs[conv]
    if (!c) {
      const parsed = parseConv(conv, this.selfId) || { cmd: CMD.PRIVATE, dstid: 0 }
      c = {
        conv,
        cmd: parsed.cmd,
        dstid: parsed.dstid,
        msgs: [], // acked/received messages, ascending seq
        seen: {}, // seq → true (dedupe)
        pending: [], // local messages without seq yet
        loaded: false, // floor/contig are meaningful
        floor: 0, // messages with seq <= floor are not loaded
        contig: 0, // every seq in (floor, contig] is loaded
        lastSeq: 0, // highest seq known to exist
        last: null, // last message (for the list)
        lastTs: 0,
        readSeq: this.readSeqs[conv] || 0,
        unread: 0,
        unreadBase: 0, // seqs <= unreadBase were counted by the server's list
        loadingOlder: false,
        typing: null, // TODO(server: typing indicator) — not in docs/protocol.md yet
      }
      this.convs[conv] = c
    }
    return c
  }

  convFor(cmd, dstid) {
    return this.ensureConv(convId(cmd, this.selfId, dstid))
  }

  get sortedConvs() {
    return Object.values(this.convs)
      .filter((c) => c.last || c.pending.length)
      .sort((a, b) => convTime(b) - convTime(a))
  }

  get totalUnread() {
    let n = 0
    for (const c of Object.values(this.convs)) n += c.unread
    return n
  }

  /** Start showing `conv`: it counts as read while active. */
  open(conv) {
    this.activeConv = conv
    const c = this.ensureConv(conv)
    if (!c.loaded && !c.lastSeq && this.listLoaded) {
      c.loaded = true // not in the server's list: a brand-new conversation, nothing to fetch
    }
    this.markRead(conv)
    return c
  }

  close(conv) {
    if (this.activeConv === conv) this.activeConv = ''
  }

  markRead(conv) {
    const c = this.convs[conv]
    if (!c) return
    const seq = Math.max(c.lastSeq, c.contig)
    c.unread = 0
    if (seq > c.readSeq) {
      c.readSeq = seq
      this.readSeqs[conv] = seq
    }
    // TODO(server: read receipts) — send a read cursor when docs/protocol.md has one.
  }

  // ---- incoming -------------------------------------------------------------------

  /**
   * Add a message frame (cmd 10/11 live, or from a sync page).
   * @returns {{added: boolean, gap: boolean, conv: string, msg: object}}
   */
  receive(frame, { live = true } = {}) {
    const conv = messageConv(frame, this.selfId)
    const c = this.ensureConv(conv)
    const seq = Number(frame.seq) || 0
    const msg = { ...frame, conv, seq, state: SEND_STATE.SENT }
    // Our own message coming back (sync, another device): it settles a pending copy.
    if (msg.cid && Number(msg.userid) === this.selfId) this._settlePending(msg.cid)
    if (!seq) {
      // No seq (not expected from imhub): keep it, deduplicated by server id.
      const key = `id:${msg.id}`
      if (msg.id && c.seen[key]) return { added: false, gap: false, conv, msg }
      if (msg.id) c.seen[key] = true
      c.msgs.push(msg)
      this._touch(c, msg)
      return { added: true, gap: false, conv, msg }
    }
    if (c.seen[seq]) return { added: false, gap: false, conv, msg }
    let gap = false
    if (!c.loaded) {
      // First sight of this conversation: start the loaded window here.
      c.loaded = true
      c.floor = seq - 1
      c.contig = seq - 1
    } else if (live && seq > c.contig + 1 && seq > c.floor + 1) {
      gap = true
    }
    if (seq <= c.floor) c.floor = seq - 1 // history page below the window
    c.seen[seq] = true
    insertBySeq(c.msgs, msg)
    this._advanceContig(c)
    if (seq > c.lastSeq) c.lastSeq = seq
    this._touch(c, msg)
    if (Number(msg.userid) !== this.selfId && seq > c.readSeq && seq > c.unreadBase) {
      if (this.activeConv === conv) this.markRead(conv)
      else c.unread += 1
    } else if (this.activeConv === conv) {
      this.markRead(conv)
    }
    return { added: true, gap, conv, msg }
  }

  _advanceContig(c) {
    if (c.contig < c.floor) c.contig = c.floor
    while (c.seen[c.contig + 1]) c.contig += 1
  }

  _touch(c, msg) {
    const last = c.last
    if (!last || (msg.seq || 0) >= (last.seq || 0)) {
      c.last = msg
      c.lastTs = msg.ts || c.lastTs
    }
  }

  // ---- outgoing -------------------------------------------------------------------

  /** Queue a message (cmd 10/11) and send it now if connected. Returns the local message. */
  compose({ cmd, dstid, media, ...body }) {
    const c = this.convFor(cmd, dstid)
    const msg = {
      cid: newCid(this._now()),
      cmd,
      dstid: Number(dstid),
      media,
      ...body,
      userid: this.selfId,
      conv: c.conv,
      seq: 0,
      ts: this._now(),
      state: SEND_STATE.PENDING,
      sentAt: 0,
      error: '',
      local: true,
    }
    buildMessageFrame(msg) // validate now, not at send time
    c.pending.push(msg)
    this.outbox.push(msg)
    c.last = msg
    c.lastTs = msg.ts
    this._transmit(msg)
    return msg
  }

  _transmit(msg) {
    const ok = this._send(buildMessageFrame(msg))
    if (ok) msg.sentAt = this._now()
    return ok
  }

  /** Resend a failed (or stuck) message with the same cid. */
  retry(cid) {
    const msg = this.outbox.find((m) => m.cid === cid)
    if (!msg) return false
    msg.state = SEND_STATE.PENDING
    msg.error = ''
    msg.sentAt = 0
    this._transmit(msg)
    return true
  }

  /** Drop a failed message the user gave up on. */
  discard(cid) {
    const msg = this.outbox.find((m) => m.cid === cid)
    if (msg) this._removePending(msg)
  }

  /** After (re)connecting: resend everything still pending, oldest first, same cids. */
  flushOutbox() {
    for (const msg of this.outbox) {
      if (msg.state === SEND_STATE.PENDING || msg.error === 'timeout') {
        msg.state = SEND_STATE.PENDING
        msg.error = ''
        this._transmit(msg)
      }
    }
  }

  /** Connection lost: what was sent but not acked will be resent on reconnect. */
  onDisconnect() {
    for (const msg of this.outbox) if (msg.state === SEND_STATE.PENDING) msg.sentAt = 0
  }

  /** Mark sent-but-unacked messages older than the ack timeout as failed. */
  checkTimeouts() {
    const now = this._now()
    for (const msg of this.outbox) {
      if (msg.state === SEND_STATE.PENDING && msg.sentAt && now - msg.sentAt > this.ackTimeoutMs) {
        msg.state = SEND_STATE.FAILED
        msg.error = 'timeout'
      }
    }
  }

  onAck(frame) {
    const msg = this.outbox.find((m) => m.cid === frame.cid)
    if (!msg) return null
    this._removePending(msg)
    const conv = frame.conv || msg.conv
    const c = this.ensureConv(conv)
    const seq = Number(frame.seq) || 0
    const acked = { ...msg, id: frame.id, seq, ts: frame.ts || msg.ts, conv, state: SEND_STATE.SENT, local: false }
    delete acked.sentAt
    delete acked.error
    if (seq && c.seen[seq]) return acked // already arrived through a sync page
    if (seq) {
      if (!c.loaded) {
        c.loaded = true
        c.floor = seq - 1
        c.contig = seq - 1
      }
      c.seen[seq] = true
      insertBySeq(c.msgs, acked)
      this._advanceContig(c)
      if (seq > c.lastSeq) c.lastSeq = seq
    } else {
      c.msgs.push(acked)
    }
    if (!c.last || c.last === msg || (c.last.seq || 0) <= seq) {
      c.last = acked
      c.lastTs = acked.ts
    }
    if (this.activeConv === conv) this.markRead(conv)
    return acked
  }

  onError(frame) {
    if (!frame.cid) return null
    const msg = this.outbox.find((m) => m.cid === frame.cid)
    if (!msg) return null
    msg.state = SEND_STATE.FAILED
    msg.error = frame.error || 'error'
    msg.errorMsg = frame.msg || ''
    msg.errorCode = frame.code || 0
    return msg
  }

  _settlePending(cid) {
    const msg = this.outbox.find((m) => m.cid === cid)
    if (msg) this._removePending(msg)
  }

  _removePending(msg) {
    this.outbox = this.outbox.filter((m) => m !== msg)
    const c = this.convs[msg.conv]
    if (c) {
      c.pending = c.pending.filter((m) => m !== msg)
      if (c.last === msg) {
        c.last = c.pending.at(-1) || c.msgs.at(-1) || null
        c.lastTs = c.last?.ts || 0
      }
    }
  }

  // ---- conversation list and sync -------------------------------------------------

  /** Frame asking for the conversation list (first step of a sync). */
  requestConvList() {
    const rid = newRid('l')
    this.requests[rid] = { kind: 'list' }
    this.syncing = true
    return convListFrame(rid)
  }

  /** Apply cmd 31; returns the cmd 20 frame for conversations with gaps, or null. */
  applyConvList(frame) {
    if (frame.rid) delete this.requests[frame.rid]
    this.listLoaded = true
    const after = {}
    for (const item of frame.convs || []) {
      if (!item || typeof item.conv !== 'string') continue
      const c = this.ensureConv(item.conv)
      if (item.cmd) c.cmd = Number(item.cmd)
      if (item.dstid) c.dstid = Number(item.dstid)
      const lastSeq = Number(item.last_seq) || 0
      const readSeq = Math.max(c.readSeq, Number(item.read_seq) || 0)
      c.readSeq = readSeq
      if (lastSeq > c.lastSeq) c.lastSeq = lastSeq
      if (item.last && typeof item.last === 'object') {
        const last = { ...item.last, conv: item.conv, seq: Number(item.last.seq) || lastSeq, state: SEND_STATE.SENT }
        if (!c.last || (c.last.seq || 0) <= last.seq) {
          c.last = c.pending.at(-1) || last
          c.lastTs = last.ts || c.lastTs
        }
      }
      if (this.activeConv === item.conv) {
        c.unread = 0
      } else {
        const serverUnread = item.unread === undefined ? Infinity : Math.max(0, Number(item.unread) || 0)
        c.unread = Math.max(0, Math.min(serverUnread, lastSeq - readSeq))
      }
      c.unreadBase = Math.max(c.unreadBase, lastSeq)
      if (!c.loaded) {
        c.loaded = true
        c.floor = Math.max(0, lastSeq - this.initialWindow)
        c.contig = c.floor
      }
      if (lastSeq > c.contig) after[item.conv] = c.contig
    }
    if (!Object.keys(after).length) {
      this.syncing = false
      return null
    }
    return this._syncRequest(after, 'sync')
  }

  /** Sync every loaded conversation from its contiguous cursor (cmd 37, seq gap). */
  resyncFrame(onlyConv) {
    const after = {}
    for (const c of Object.values(this.convs)) {
      if (onlyConv && c.conv !== onlyConv) continue
      if (c.loaded) after[c.conv] = c.contig
    }
    if (!Object.keys(after).length) return null
    return this._syncRequest(after, 'sync')
  }

  _syncRequest(after, kind, conv) {
    const rid = newRid(kind === 'history' ? 'h' : 's')
    this.requests[rid] = { kind, conv }
    if (kind === 'sync') this.syncing = true
    return syncFrame(after, kind === 'history' ? this.pageSize : 0, rid)
  }

  /**
   * Apply cmd 30. Returns the next cmd 20 frame while `more` is true (sync paging), or
   * null when done.
   */
  applySyncPage(frame) {
    const req = (frame.rid && this.requests[frame.rid]) || { kind: 'sync' }
    if (frame.rid) delete this.requests[frame.rid]
    for (const m of frame.msgs || []) {
      if (m && typeof m === 'object') this.receive(m, { live: false })
    }
    if (req.kind === 'history') {
      const c = this.convs[req.conv]
      if (c) {
        c.loadingOlder = false
        // The page ended at our old floor: everything from the requested point is here.
        if (req.from !== undefined && c.floor > req.from) c.floor = req.from
      }
      return null
    }
    if (frame.more && frame.after && typeof frame.after === 'object' && Object.keys(frame.after).length) {
      return this._syncRequest(frame.after, 'sync')
    }
    if (frame.more) {
      const next = this.resyncFrame()
      if (next) return next
    }
    this.syncing = Object.values(this.requests).some((r) => r.kind === 'sync' || r.kind === 'list')
    return null
  }

  hasOlder(conv) {
    const c = this.convs[conv]
    return !!c && c.loaded && c.floor > 0
  }

  /**
   * cmd 20 frame for the page of history just below what is loaded. docs/protocol.md
   * has no backward history command yet, so this asks cmd 20 for `after = floor - page`
   * with `limit = page`. TODO(server: history) — switch when a history command appears.
   */
  olderFrame(conv) {
    const c = this.convs[conv]
    if (!c || !c.loaded || c.floor <= 0 || c.loadingOlder) return null
    const from = Math.max(0, c.floor - this.pageSize)
    c.loadingOlder = true
    const frame = this._syncRequest({ [conv]: from }, 'history', conv)
    this.requests[frame.rid].from = from
    frame.limit = c.floor - from
    return frame
  }
}

function convTime(c) {
  return c.last?.ts || c.lastTs || 0
}

function insertBySeq(list, msg) {
  let i = list.length
  while (i > 0 && (list[i - 1].seq || 0) > msg.seq) i -= 1
  list.splice(i, 0, msg)
}
