// Conversation state without Vue: messages ordered by seq and deduplicated by
// (conv, seq), the outbox of pending/failed outgoing messages (acked by cid), unread
// counters and read cursors (cmd 23/33), members' delivered/read cursors (cmd 26/33/38),
// typing (cmd 24/34), recall (cmd 25/36), and the sync/history requests of
// docs/protocol.md (cmd 20/21/22 → 30/31/32).
// The Pinia store wraps an instance in reactive(); every method mutates through `this`.

import {
  CMD, MEDIA, RECALL_WINDOW_MS, TYPING_INTERVAL_MS, buildMessageFrame, convId, convListFrame, historyFrame,
  messageConv, newCid, newRid, parseConv, readFrame, recallFrame, receiptsFrame, syncFrame, typingFrame,
} from './protocol.js'

export const SEND_STATE = Object.freeze({ PENDING: 'pending', FAILED: 'failed', SENT: 'sent' })
/** What the other side of a 1:1 conversation has done with one of my messages. */
export const RECEIPT = Object.freeze({ NONE: '', SENT: 'sent', DELIVERED: 'delivered', READ: 'read' })

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
    this.convs = {} // conv id → conversation
    this.outbox = [] // pending/failed local messages, oldest first
    this.activeConv = ''
    this.visible = true // the page is shown (document.visibilityState)
    this.requests = {} // rid → {kind: 'sync'|'history'|'list'|'receipts', conv?}
    this.typingSentAt = {} // conv → when we last sent cmd 24
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
        readSeq: 0, // my read cursor (server's read_seq, or what we told it)
        readSent: 0, // highest seq sent with cmd 23
        unread: 0,
        unreadBase: 0, // seqs <= unreadBase were counted by the server's list
        loadingOlder: false,
        cursors: {}, // userid → {delivered, read}: the members' markers (cmd 33/38)
        receiptsLoaded: false,
        typing: {}, // userid → time the indicator expires
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

  /** Start showing `conv`: it counts as read while active and the page is visible. */
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

  /** The page was hidden or shown again (reading resumes when it is shown). */
  setVisible(visible) {
    this.visible = !!visible
    if (this.visible && this.activeConv) this.markRead(this.activeConv)
  }

  /** Is `conv` on screen right now (open, and the page visible)? */
  isShown(conv) {
    return this.activeConv === conv && this.visible
  }

  /** The user sees `conv`: everything known in it is read (sent by flushReads()). */
  markRead(conv) {
    const c = this.convs[conv]
    if (!c || !this.isShown(conv)) return false
    c.unread = 0
    return this._readUpTo(c, c.lastSeq)
  }

  _readUpTo(c, seq) {
    if (seq > c.readSeq) {
      c.readSeq = seq
      const left = c.lastSeq - seq
      if (c.unread > left) c.unread = Math.max(0, left)
      return true
    }
    return false
  }

  /** cmd 23 frames for read cursors not yet told to the server (the store debounces). */
  flushReads() {
    const frames = []
    for (const c of Object.values(this.convs)) {
      if (c.readSeq > c.readSent) {
        c.readSent = c.readSeq
        frames.push(readFrame(c.conv, c.readSeq))
      }
    }
    return frames
  }

  // ---- receipts (cmd 26 → 38, cmd 33) ------------------------------------------------

  /** cmd 26: ask for the members' markers (when a chat opens). */
  receiptsRequest(conv) {
    const frame = receiptsFrame(conv, newRid('r'))
    this.requests[frame.rid] = { kind: 'receipts', conv }
    return frame
  }

  /** cmd 38: every member's delivered/read marker. */
  applyReceiptList(frame) {
    if (frame.rid) delete this.requests[frame.rid]
    if (typeof frame.conv !== 'string') return
    const c = this.ensureConv(frame.conv)
    for (const cur of frame.cursors || []) {
      if (cur && cur.userid) this._cursor(c, cur.userid, cur.delivered_seq, cur.read_seq)
    }
    c.receiptsLoaded = true
  }

  /** cmd 33: someone's markers moved (delivered only, or read too). */
  applyReceipt(frame) {
    if (typeof frame.conv !== 'string' || !frame.userid) return
    const c = this.ensureConv(frame.conv)
    this._cursor(c, frame.userid, frame.delivered_seq, frame.read_seq)
  }

  _cursor(c, userid, delivered, read) {
    const uid = Number(userid)
    const d = Number(delivered) || 0
    const r = Number(read) || 0
    if (uid === this.selfId) {
      // Another device of mine read this far (or the list/receipts told us).
      if (r > c.readSeq) {
        c.readSeq = r
        if (r > c.readSent) c.readSent = r
        c.unread = Math.max(0, Math.min(c.unread, c.lastSeq - r))
      }
    }
    const cur = c.cursors[uid] || (c.cursors[uid] = { delivered: 0, read: 0 })
    if (r > cur.read) cur.read = r
    if (Math.max(d, r) > cur.delivered) cur.delivered = Math.max(d, r)
  }

  /** ✓/✓✓ of one of my 1:1 messages: '' (not mine, not acked), sent, delivered or read. */
  receiptOf(msg) {
    if (!msg || Number(msg.userid) !== this.selfId || !msg.seq || msg.state !== SEND_STATE.SENT) return RECEIPT.NONE
    const c = this.convs[msg.conv]
    if (!c || c.cmd !== CMD.PRIVATE) return RECEIPT.NONE
    const cur = c.cursors[c.dstid]
    if (cur && cur.read >= msg.seq) return RECEIPT.READ
    if (cur && cur.delivered >= msg.seq) return RECEIPT.DELIVERED
    return RECEIPT.SENT
  }

  /** How many members other than the sender have read `msg` (groups: "read by N"). */
  readBy(msg) {
    if (!msg || !msg.seq) return 0
    const c = this.convs[msg.conv]
    if (!c) return 0
    let n = 0
    for (const [uid, cur] of Object.entries(c.cursors)) {
      if (Number(uid) !== Number(msg.userid) && cur.read >= msg.seq) n += 1
    }
    return n
  }

  // ---- typing (cmd 24, cmd 34) ----------------------------------------------------

  /** cmd 24 for `conv`, at most one per TYPING_INTERVAL_MS; null when too soon. */
  typingFrame(conv) {
    const now = this._now()
    const last = this.typingSentAt[conv] || 0
    if (last && now - last < TYPING_INTERVAL_MS) return null
    this.typingSentAt[conv] = now
    return typingFrame(conv)
  }

  applyTyping(frame) {
    const uid = Number(frame.userid)
    if (typeof frame.conv !== 'string' || !uid || uid === this.selfId) return
    const c = this.ensureConv(frame.conv)
    const ttl = Math.max(0, Number(frame.ttl) || 6000)
    c.typing[uid] = this._now() + ttl
  }

  /** Who is typing in `conv` now (their indicators expire by themselves). */
  typingUsers(conv) {
    const c = this.convs[conv]
    if (!c) return []
    const now = this._now()
    return Object.entries(c.typing).filter(([, until]) => until > now).map(([uid]) => Number(uid))
  }

  /** Drop expired indicators; returns the time of the next expiry (0: none left). */
  pruneTyping() {
    const now = this._now()
    let next = 0
    for (const c of Object.values(this.convs)) {
      for (const [uid, until] of Object.entries(c.typing)) {
        if (until <= now) delete c.typing[uid]
        else if (!next || until < next) next = until
      }
    }
    return next
  }

  // ---- recall (cmd 25, cmd 36) ----------------------------------------------------

  canRecall(msg) {
    return !!msg && Number(msg.userid) === this.selfId && !!msg.id && !!msg.seq && !msg.recalled &&
      msg.state === SEND_STATE.SENT && Number(msg.media) !== MEDIA.EVENT &&
      this._now() - (Number(msg.ts) || 0) < this.recallWindowMs
  }

  recallRequest(msg) {
    return recallFrame(msg.id, newRid('x'))
  }

  /** cmd 36: a message was recalled (by its sender, on any device). */
  applyRecalled(frame) {
    if (typeof frame.conv !== 'string') return null
    const c = this.ensureConv(frame.conv)
    const seq = Number(frame.seq) || 0
    const id = Number(frame.id) || 0
    const hit = c.msgs.find((m) => (seq && m.seq === seq) || (id && Number(m.id) === id))
    if (hit) eraseRecalled(hit)
    if (c.last && ((seq && c.last.seq === seq) || (id && Number(c.last.id) === id))) {
      c.last = eraseRecalled({ ...c.last })
    }
    return hit || null
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
    if (msg.recalled) eraseRecalled(msg)
    const mine = Number(msg.userid) === this.selfId
    // Our own message coming back (sync, another device): it settles a pending copy.
    if (msg.cid && mine) this._settlePending(msg.cid)
    if (c.typing[msg.userid]) delete c.typing[msg.userid] // they sent what they were typing
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
    if (mine) {
      // Writing in a conversation means having read it up to there (other devices too).
      if (seq > c.unreadBase || this.isShown(conv)) this._readUpTo(c, seq)
    } else if (seq > c.readSeq && seq > c.unreadBase) {
      if (this.isShown(conv)) this.markRead(conv)
      else c.unread += 1
    } else if (this.isShown(conv)) {
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
    if (seq) this._readUpTo(c, seq)
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
      const serverRead = Number(item.read_seq) || 0
      if (lastSeq > c.lastSeq) c.lastSeq = lastSeq
      this._cursor(c, this.selfId, item.delivered_seq, serverRead)
      // We told the server more than it says (a cmd 23 in flight): send it again.
      if (c.readSeq > serverRead) c.readSent = serverRead
      if (item.last && typeof item.last === 'object') {
        const last = { ...item.last, conv: item.conv, seq: Number(item.last.seq) || lastSeq, state: SEND_STATE.SENT }
        if (!c.last || (c.last.seq || 0) <= last.seq) {
          c.last = c.pending.at(-1) || last
          c.lastTs = last.ts || c.lastTs
        }
      }
      if (this.isShown(item.conv)) {
        c.unread = 0
        this.markRead(item.conv)
      } else {
        // The server's count is the truth (less what we read since it was computed).
        const serverUnread = item.unread === undefined ? lastSeq - serverRead : Math.max(0, Number(item.unread) || 0)
        c.unread = Math.max(0, Math.min(serverUnread, lastSeq - c.readSeq))
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

  _syncRequest(after, kind) {
    const rid = newRid('s')
    this.requests[rid] = { kind }
    this.syncing = true
    return syncFrame(after, 0, rid)
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

  /** cmd 22 for the page of history just below what is loaded (null: none, or busy). */
  olderFrame(conv) {
    const c = this.convs[conv]
    if (!c || !c.loaded || c.floor <= 0 || c.loadingOlder) return null
    return this._historyRequest(c, this.pageSize)
  }

  /**
   * cmd 22 loading down to `seq` (a search hit) with a few messages of context, so the
   * loaded window stays contiguous; the store sends the follow-up pages applyHistory()
   * returns. Null when `seq` is loaded already (or the conversation is not yet).
   */
  jumpFrame(conv, seq, context = 10) {
    const c = this.convs[conv]
    if (!c || !c.loaded || c.loadingOlder) return null
    const until = Math.max(1, Number(seq) - context)
    if (until > c.floor) return null
    return this._historyRequest(c, Math.min(this.jumpPageSize, c.floor - until + 1), until)
  }

  _historyRequest(c, limit, until = 0) {
    const frame = historyFrame(c.conv, c.floor + 1, limit, newRid('h'))
    this.requests[frame.rid] = { kind: 'history', conv: c.conv, until }
    c.loadingOlder = true
    return frame
  }

  /** Apply cmd 32; returns the next cmd 22 while loading down to a search hit, else null. */
  applyHistory(frame) {
    const req = (frame.rid && this.requests[frame.rid]) || { kind: 'history', conv: frame.conv, until: 0 }
    if (frame.rid) delete this.requests[frame.rid]
    const c = this.convs[req.conv || frame.conv]
    if (!c) return null
    const msgs = (frame.msgs || []).filter((m) => m && typeof m === 'object')
    const before = c.floor
    for (const m of msgs) this.receive({ ...m, conv: c.conv }, { live: false })
    c.loadingOlder = false
    if (!frame.more) c.floor = 0 // nothing older exists
    else if (msgs.length && c.floor >= before) c.floor = Math.max(0, Number(msgs[0].seq) - 1)
    this._advanceContig(c)
    if (req.until && frame.more && c.floor >= req.until && c.floor < before) {
      return this._historyRequest(c, Math.min(this.jumpPageSize, c.floor - req.until + 1), req.until)
    }
    return null
  }

  /** A request failed (cmd 2 with its rid): forget it. */
  failRequest(rid) {
    const req = this.requests[rid]
    if (!req) return null
    delete this.requests[rid]
    if (req.kind === 'history' && this.convs[req.conv]) this.convs[req.conv].loadingOlder = false
    if (req.kind === 'sync' || req.kind === 'list') {
      this.syncing = Object.values(this.requests).some((r) => r.kind === 'sync' || r.kind === 'list')
    }
    return req
  }
}

/** A recalled message keeps its place, loses its content (docs/protocol.md "Recall"). */
function eraseRecalled(m) {
  m.recalled = true
  m.content = ''
  m.pic = ''
  m.url = ''
  m.memo = ''
  return m
}

function convTime(c) {
  return c.last?.ts || c.lastTs || 0
}

function insertBySeq(list, msg) {
  let i = list.length
  while (i > 0 && (list[i - 1].seq || 0) > msg.seq) i -= 1
  list.splice(i, 0, msg)
}
