// The conversation features of docs/protocol.md on top of ChatCore: read cursors
// (cmd 23/33), delivered/read marks and "read by N" (cmd 26/33/38), typing (24/34),
// recall (25/36), history merge (22/32) and group-event text (media 10).
import { describe, expect, it } from 'vitest'
import { ChatCore, RECEIPT } from '@imhub/sdk/chatcore.js'
import { tIn } from '../src/lib/i18n.js'
import { eventText, highlight, searchFrame, snippetParts, summary } from '@imhub/sdk/protocol.js'

function setup() {
  const sent = []
  let now = 1_000_000
  const core = new ChatCore({
    selfId: 3, send: (f) => { sent.push(f); return true }, now: () => now, pageSize: 50, jumpPageSize: 100,
  })
  return { core, sent, tick: (ms) => { now += ms }, now: () => now }
}

const pm = (seq, extra = {}) => ({
  id: 100 + seq, userid: 7, cmd: 10, dstid: 3, media: 1, content: `m${seq}`, conv: 'p3_7', seq, ts: seq * 10, ...extra,
})
const gm = (seq, userid, extra = {}) => ({
  id: 500 + seq, userid, cmd: 11, dstid: 12, media: 1, content: `g${seq}`, conv: 'g12', seq, ts: seq * 10, ...extra,
})

/** Send a message as user 3 and ack it with `seq`. */
function sendAcked(core, seq, { cmd = 10, dstid = 7, conv = 'p3_7', ts } = {}) {
  const m = core.compose({ cmd, dstid, media: 1, content: `mine ${seq}` })
  return core.onAck({ cmd: 1, cid: m.cid, id: 900 + seq, seq, conv, ts: ts ?? core._now() })
}

describe('read cursors (cmd 23, 33, 31)', () => {
  it('reads only while the conversation is open and the page visible', () => {
    const { core } = setup()
    core.receive(pm(1))
    core.setVisible(false)
    core.open('p3_7')
    expect(core.convs.p3_7.unread).toBe(1)
    expect(core.flushReads()).toEqual([])
    core.receive(pm(2))
    expect(core.convs.p3_7.unread).toBe(2)
    core.setVisible(true)
    expect(core.convs.p3_7.unread).toBe(0)
    expect(core.flushReads()).toEqual([{ cmd: 23, conv: 'p3_7', seq: 2 }])
    core.close('p3_7')
    core.receive(pm(3))
    expect(core.convs.p3_7.unread).toBe(1)
  })

  it('takes the server unread from the conversation list as the truth', () => {
    const { core } = setup()
    core.receive(pm(1))
    core.receive(pm(2))
    expect(core.totalUnread).toBe(2)
    core.applyConvList({ cmd: 31, convs: [
      { conv: 'p3_7', cmd: 10, dstid: 7, last_seq: 9, read_seq: 8, delivered_seq: 9, unread: 1, last: pm(9) },
      { conv: 'g12', cmd: 11, dstid: 12, last_seq: 40, read_seq: 10, delivered_seq: 40, unread: 30 },
    ] })
    expect(core.convs.p3_7.unread).toBe(1)
    expect(core.convs.g12.unread).toBe(30)
    expect(core.totalUnread).toBe(31)
  })

  it('a receipt of mine from another device clears unread', () => {
    const { core } = setup()
    core.applyConvList({ cmd: 31, convs: [{ conv: 'p3_7', last_seq: 5, read_seq: 0, unread: 5 }] })
    core.applyReceipt({ cmd: 33, conv: 'p3_7', userid: 3, delivered_seq: 3, read_seq: 3 })
    expect(core.convs.p3_7.unread).toBe(2)
    expect(core.flushReads()).toEqual([]) // the server told us; nothing to send back
    core.applyReceipt({ cmd: 33, conv: 'p3_7', userid: 3, delivered_seq: 5, read_seq: 5 })
    expect(core.totalUnread).toBe(0)
  })

  it('resends a read cursor the server does not have yet', () => {
    const { core } = setup()
    core.open('p3_7')
    core.receive(pm(1))
    core.receive(pm(2))
    expect(core.flushReads()).toEqual([{ cmd: 23, conv: 'p3_7', seq: 2 }])
    core.applyConvList({ cmd: 31, convs: [{ conv: 'p3_7', last_seq: 2, read_seq: 1, unread: 1 }] })
    expect(core.convs.p3_7.unread).toBe(0)
    expect(core.flushReads()).toEqual([{ cmd: 23, conv: 'p3_7', seq: 2 }])
  })
})

describe('receipt marks (cmd 26 → 38, cmd 33)', () => {
  it('goes sent → delivered (✓) → read (✓✓) on my 1:1 messages', () => {
    const { core } = setup()
    const a = sendAcked(core, 1)
    const b = sendAcked(core, 2)
    const mine = () => core.convs.p3_7.msgs.map((m) => core.receiptOf(m))
    expect(mine()).toEqual([RECEIPT.SENT, RECEIPT.SENT])
    core.applyReceipt({ cmd: 33, conv: 'p3_7', userid: 7, delivered_seq: 1 })
    expect(core.receiptOf(a)).toBe(RECEIPT.DELIVERED)
    expect(mine()).toEqual([RECEIPT.DELIVERED, RECEIPT.SENT])
    core.applyReceipt({ cmd: 33, conv: 'p3_7', userid: 7, delivered_seq: 2, read_seq: 2 })
    expect(mine()).toEqual([RECEIPT.READ, RECEIPT.READ])
    // markers only move forward: a late "delivered 1" changes nothing
    core.applyReceipt({ cmd: 33, conv: 'p3_7', userid: 7, delivered_seq: 1 })
    expect(core.receiptOf(b)).toBe(RECEIPT.READ)
  })

  it('shows no mark on their messages, pending ones, or in groups', () => {
    const { core } = setup()
    core.receive(pm(1))
    core.applyReceipt({ cmd: 33, conv: 'p3_7', userid: 7, delivered_seq: 9, read_seq: 9 })
    expect(core.receiptOf(core.convs.p3_7.msgs[0])).toBe(RECEIPT.NONE)
    const pending = core.compose({ cmd: 10, dstid: 7, media: 1, content: 'x' })
    expect(core.receiptOf(pending)).toBe(RECEIPT.NONE)
    const g = sendAcked(core, 1, { cmd: 11, dstid: 12, conv: 'g12' })
    expect(core.receiptOf(g)).toBe(RECEIPT.NONE)
  })

  it('starts from the receipt list when a chat opens', () => {
    const { core } = setup()
    const a = sendAcked(core, 4)
    const r = core.receiptsRequest('p3_7')
    expect(r).toMatchObject({ cmd: 26, conv: 'p3_7' })
    core.applyReceiptList({ cmd: 38, rid: r.rid, conv: 'p3_7', cursors: [
      { userid: 3, delivered_seq: 4, read_seq: 4 }, { userid: 7, delivered_seq: 4, read_seq: 4 },
    ] })
    expect(core.receiptOf(a)).toBe(RECEIPT.READ)
    expect(core.requests[r.rid]).toBeUndefined()
  })

  it('counts "read by N" in a group: members other than the sender with read_seq ≥ seq', () => {
    const { core } = setup()
    core.receive(gm(16, 7))
    const mine = sendAcked(core, 17, { cmd: 11, dstid: 12, conv: 'g12' })
    core.applyReceiptList({ cmd: 38, conv: 'g12', cursors: [
      { userid: 3, delivered_seq: 17, read_seq: 17 }, // me: never counted for my own message
      { userid: 7, delivered_seq: 17, read_seq: 12 },
      { userid: 8, delivered_seq: 17, read_seq: 17 },
      { userid: 9, delivered_seq: 0, read_seq: 0 },
    ] })
    expect(core.readBy(mine)).toBe(1)
    core.applyReceipt({ cmd: 33, conv: 'g12', userid: 7, delivered_seq: 17, read_seq: 17 })
    core.applyReceipt({ cmd: 33, conv: 'g12', userid: 9, delivered_seq: 20, read_seq: 20 })
    expect(core.readBy(mine)).toBe(3)
    // someone else's message 16: everyone but its sender (7) who read ≥ 16
    expect(core.readBy(core.convs.g12.msgs[0])).toBe(3)
  })
})

describe('typing (cmd 24, 34)', () => {
  it('sends at most one cmd 24 per conversation every 2 s', () => {
    const t = setup()
    expect(t.core.typingFrame('p3_7')).toEqual({ cmd: 24, conv: 'p3_7' })
    t.tick(500)
    expect(t.core.typingFrame('p3_7')).toBeNull()
    expect(t.core.typingFrame('g12')).toEqual({ cmd: 24, conv: 'g12' })
    t.tick(1500)
    expect(t.core.typingFrame('p3_7')).toEqual({ cmd: 24, conv: 'p3_7' })
  })

  it('shows the indicator for ttl ms, refreshed by a new event, and expires by itself', () => {
    const t = setup()
    t.core.applyTyping({ cmd: 34, conv: 'p3_7', userid: 7, ttl: 6000 })
    expect(t.core.typingUsers('p3_7')).toEqual([7])
    t.tick(4000)
    t.core.applyTyping({ cmd: 34, conv: 'p3_7', userid: 7, ttl: 6000 })
    t.tick(4000)
    expect(t.core.typingUsers('p3_7')).toEqual([7])
    expect(t.core.pruneTyping()).toBe(t.now() + 2000)
    t.tick(2000)
    expect(t.core.typingUsers('p3_7')).toEqual([])
    expect(t.core.pruneTyping()).toBe(0)
    expect(t.core.convs.p3_7.typing).toEqual({})
  })

  it('ignores my own typing and clears a typist when their message arrives', () => {
    const t = setup()
    t.core.applyTyping({ cmd: 34, conv: 'g12', userid: 3, ttl: 6000 })
    t.core.applyTyping({ cmd: 34, conv: 'g12', userid: 7, ttl: 6000 })
    t.core.applyTyping({ cmd: 34, conv: 'g12', userid: 8, ttl: 6000 })
    expect(t.core.typingUsers('g12').sort()).toEqual([7, 8])
    t.core.receive(gm(1, 7))
    expect(t.core.typingUsers('g12')).toEqual([8])
  })
})

describe('recall (cmd 25, 36)', () => {
  it('offers recall on my sent messages within 2 minutes only', () => {
    const t = setup()
    const mine = sendAcked(t.core, 1)
    t.core.receive(pm(2))
    const theirs = t.core.convs.p3_7.msgs[1]
    expect(t.core.canRecall(mine)).toBe(true)
    expect(t.core.canRecall(theirs)).toBe(false)
    expect(t.core.recallRequest(mine)).toMatchObject({ cmd: 25, id: 901 })
    t.tick(120_001)
    expect(t.core.canRecall(mine)).toBe(false)
    const pending = t.core.compose({ cmd: 10, dstid: 7, media: 1, content: 'x' })
    expect(t.core.canRecall(pending)).toBe(false)
  })

  it('erases a recalled message in place, and the conversation preview', () => {
    const { core } = setup()
    core.receive(pm(1))
    core.receive(pm(2, { content: '秘密' }))
    const hit = core.applyRecalled({ cmd: 36, conv: 'p3_7', id: 102, seq: 2, userid: 7 })
    expect(hit).toMatchObject({ seq: 2, recalled: true, content: '' })
    expect(core.convs.p3_7.msgs.map((m) => m.seq)).toEqual([1, 2])
    expect(core.convs.p3_7.last).toMatchObject({ recalled: true, content: '' })
    expect(summary(core.convs.p3_7.last, (k) => k)).toBe('recalled')
    expect(core.canRecall(hit)).toBe(false)
  })

  it('keeps recalled:true from sync and history, never the old text', () => {
    const { core } = setup()
    core.receive(pm(5, { recalled: true, content: 'leftover?' }), { live: false })
    expect(core.convs.p3_7.msgs[0]).toMatchObject({ recalled: true, content: '' })
    // a recall for a message not loaded yet is harmless
    expect(core.applyRecalled({ cmd: 36, conv: 'p3_7', id: 1, seq: 1 })).toBeNull()
  })
})

describe('history (cmd 22 → 32)', () => {
  function loaded(core, last) {
    const s = core.applyConvList({ cmd: 31, convs: [{ conv: 'p3_7', last_seq: last, read_seq: last, unread: 0 }] })
    const msgs = []
    for (let i = Math.max(1, last - 29); i <= last; i++) msgs.push(pm(i))
    core.applySyncPage({ cmd: 30, rid: s.rid, msgs, more: false })
  }

  it('merges overlapping pages and live messages without duplicates', () => {
    const { core } = setup()
    loaded(core, 100)
    const h = core.olderFrame('p3_7')
    // a live message and a page that overlaps what is loaded
    core.receive(pm(101))
    const page = []
    for (let i = 21; i <= 75; i++) page.push(pm(i))
    core.applyHistory({ cmd: 32, rid: h.rid, conv: 'p3_7', msgs: page, more: true })
    const seqs = core.convs.p3_7.msgs.map((m) => m.seq)
    expect(seqs).toEqual(Array.from({ length: 81 }, (_, i) => i + 21))
    expect(new Set(seqs).size).toBe(seqs.length)
    expect(core.convs.p3_7.floor).toBe(20)
    expect(core.convs.p3_7.contig).toBe(101)
  })

  it('a page of messages already loaded still lowers the floor', () => {
    const { core } = setup()
    loaded(core, 40)
    const h = core.olderFrame('p3_7')
    const c = core.convs.p3_7
    core.receive(pm(10), { live: false }) // arrived meanwhile (another page)
    const page = Array.from({ length: 10 }, (_, i) => pm(i + 1))
    core.applyHistory({ cmd: 32, rid: h.rid, conv: 'p3_7', msgs: page, more: false })
    expect(c.floor).toBe(0)
    expect(c.msgs.map((m) => m.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
    expect(core.hasOlder('p3_7')).toBe(false)
  })

  it('loads down to a search hit page by page, keeping the window contiguous', () => {
    const { core } = setup()
    loaded(core, 400) // 371..400 loaded, floor 370
    expect(core.jumpFrame('p3_7', 390)).toBeNull() // already there
    const f1 = core.jumpFrame('p3_7', 160) // want 150..370
    expect(f1).toMatchObject({ cmd: 22, before: 371, limit: 100 })
    expect(core.olderFrame('p3_7')).toBeNull() // busy
    const page = (lo, hi) => Array.from({ length: hi - lo + 1 }, (_, i) => pm(lo + i))
    const f2 = core.applyHistory({ cmd: 32, rid: f1.rid, conv: 'p3_7', msgs: page(271, 370), more: true })
    expect(f2).toMatchObject({ cmd: 22, before: 271, limit: 100 })
    const f3 = core.applyHistory({ cmd: 32, rid: f2.rid, conv: 'p3_7', msgs: page(171, 270), more: true })
    expect(f3).toMatchObject({ cmd: 22, before: 171, limit: 21 })
    expect(core.applyHistory({ cmd: 32, rid: f3.rid, conv: 'p3_7', msgs: page(150, 170), more: true })).toBeNull()
    const c = core.convs.p3_7
    expect(c.floor).toBe(149)
    expect(c.seen[160]).toBe(true)
    expect(c.msgs.map((m) => m.seq)).toEqual(Array.from({ length: 251 }, (_, i) => i + 150))
    expect(c.loadingOlder).toBe(false)
  })

  it('a failed history request can be retried', () => {
    const { core } = setup()
    loaded(core, 100)
    const h = core.olderFrame('p3_7')
    core.failRequest(h.rid)
    expect(core.convs.p3_7.loadingOlder).toBe(false)
    expect(core.olderFrame('p3_7')).not.toBeNull()
  })
})

describe('group events (media 10)', () => {
  const names = { 3: 'Alice', 7: 'Bob', 8: 'Carol' }
  const name = (id) => names[id] || `#${id}`
  const ev = (content, userid, amount, memo = '') => ({
    id: 1, userid, cmd: 11, dstid: 12, media: 10, content, amount, memo, conv: 'g12', seq: 1, ts: 1,
  })
  const en = (k, p) => tIn('en', k, p)
  const zh = (k, p) => tIn('zh', k, p)

  it('renders each kind as one line of text', () => {
    expect(eventText(ev('joined', 3, 3), en, name)).toBe('Alice joined')
    expect(eventText(ev('left', 8, 8), en, name)).toBe('Carol left')
    expect(eventText(ev('removed', 7, 8), en, name)).toBe('Bob removed Carol')
    expect(eventText(ev('renamed', 3, 0, 'Hikers'), en, name)).toBe('Alice renamed the group to "Hikers"')
    expect(eventText(ev('created', 3, 3, 'Weekend'), en, name)).toBe('Alice created the group "Weekend"')
    expect(eventText(ev('exploded', 3, 3), en, name)).toBe('Group updated')
    expect(eventText(ev('system', 0, 0, 'Maintenance tonight 22:00'), en, name)).toBe('Maintenance tonight 22:00')
    expect(eventText(ev('someday', 3, 0, 'shown as is'), en, name)).toBe('shown as is')
    expect(eventText(ev('removed', 7, 8), zh, name)).toBe('Bob 将 Carol 移出了群聊')
    expect(eventText(ev('renamed', 3, 0, '周末'), zh, name)).toBe('Alice 将群名改为“周末”')
  })

  it('keeps names and group names as plain text (no template tricks)', () => {
    const odd = (id) => (id === 7 ? '$& <b>{user}</b>' : 'X')
    expect(eventText(ev('removed', 7, 8, ''), en, odd)).toBe('$& <b>{user}</b> removed X')
    expect(eventText(ev('renamed', 8, 0, '<img src=x>'), en, odd)).toBe('X renamed the group to "<img src=x>"')
  })

  it('is the preview of the conversation list and counts like any message', () => {
    const { core } = setup()
    core.receive(ev('joined', 8, 8))
    expect(summary(core.convs.g12.last, en, name)).toBe('Carol joined')
    expect(core.convs.g12.unread).toBe(1)
  })
})

describe('search (cmd 27)', () => {
  it('builds frames with paging', () => {
    expect(searchFrame(' 天气 ', 0, 20, 'q1')).toEqual({ cmd: 27, rid: 'q1', q: '天气', limit: 20 })
    expect(searchFrame('x', 990, 20, 'q2')).toEqual({ cmd: 27, rid: 'q2', q: 'x', limit: 20, before: 990 })
  })
  it('marks every match, case-insensitively, as text parts', () => {
    expect(highlight('明天天气好', '天气')).toEqual([{ text: '明天' }, { text: '天气', mark: true }, { text: '好' }])
    expect(highlight('Hello hello', 'HELLO')).toEqual([
      { text: 'Hello', mark: true }, { text: ' ' }, { text: 'hello', mark: true },
    ])
    expect(highlight('a <b>', '')).toEqual([{ text: 'a <b>' }])
  })
  it("splits the server's snippet at its marks (UTF-16 offsets), kind label first", () => {
    const hit = { media: 1, content: 'x', snippet: '…🎉 the Meeting <b>', marks: [[8, 12]] }
    expect(snippetParts(hit, 'meet')).toEqual([{ text: '…🎉 the ' }, { text: 'Meet', mark: true }, { text: 'ing <b>' }])
    expect(snippetParts({ media: 5, snippet: 'Lucky draw', marks: [[0, 5], [6, 99]] }, 'luck dr', (k) => k)).toEqual([
      { text: '[redpacket] ' }, { text: 'Lucky', mark: true }, { text: ' ' }, { text: 'draw', mark: true },
    ])
    // An older server (no snippet): the summary with the query marked.
    expect(snippetParts({ media: 1, content: 'see the meeting' }, 'meet')).toEqual([
      { text: 'see the ' }, { text: 'meet', mark: true }, { text: 'ing' },
    ])
    expect(snippetParts({ media: 1, recalled: true, snippet: '' }, 'x', (k) => k)).toEqual([{ text: 'recalled' }])
  })
})
