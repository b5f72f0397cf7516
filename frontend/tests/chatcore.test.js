import { beforeEach, describe, expect, it } from 'vitest'
import { ChatCore, SEND_STATE } from '@imhub/sdk/chatcore.js'

function setup({ online = true } = {}) {
  const sent = []
  let now = 1000
  const net = { online }
  const core = new ChatCore({
    selfId: 3,
    send: (f) => { if (!net.online) return false; sent.push(f); return true },
    now: () => now,
    initialWindow: 30,
    pageSize: 50,
    ackTimeoutMs: 15000,
  })
  return { core, sent, net, tick: (ms) => { now += ms } }
}

const msg = (seq, extra = {}) => ({
  id: 100 + seq, userid: 7, cmd: 10, dstid: 3, media: 1, content: `m${seq}`, conv: 'p3_7', seq, ts: seq * 10, ...extra,
})

describe('incoming messages', () => {
  it('dedupes by (conv, seq) and keeps seq order', () => {
    const { core } = setup()
    core.receive(msg(1))
    core.receive(msg(3), { live: false })
    core.receive(msg(2), { live: false })
    expect(core.receive(msg(2)).added).toBe(false)
    expect(core.receive(msg(1), { live: false }).added).toBe(false)
    const c = core.convs.p3_7
    expect(c.msgs.map((m) => m.seq)).toEqual([1, 2, 3])
    expect(c.contig).toBe(3)
  })
  it('same seq in another conversation is not a duplicate', () => {
    const { core } = setup()
    core.receive(msg(1))
    expect(core.receive({ ...msg(1), conv: 'g5', cmd: 11, dstid: 5 }).added).toBe(true)
  })
  it('reports a live seq gap', () => {
    const { core } = setup()
    core.receive(msg(1))
    expect(core.receive(msg(2)).gap).toBe(false)
    const r = core.receive(msg(5))
    expect(r.gap).toBe(true)
    const frame = core.resyncFrame('p3_7')
    expect(frame.cmd).toBe(20)
    expect(frame.after).toEqual({ p3_7: 2 })
  })
  it('first live message of an unseen conversation is not a gap', () => {
    const { core } = setup()
    expect(core.receive(msg(42)).gap).toBe(false)
    expect(core.hasOlder('p3_7')).toBe(true)
  })
  it('counts unread unless the conversation is open', () => {
    const { core } = setup()
    core.receive(msg(1))
    core.receive(msg(2))
    core.receive(msg(2))
    expect(core.convs.p3_7.unread).toBe(2)
    expect(core.totalUnread).toBe(2)
    core.open('p3_7')
    expect(core.totalUnread).toBe(0)
    core.receive(msg(3))
    expect(core.convs.p3_7.unread).toBe(0)
    expect(core.convs.p3_7.readSeq).toBe(3)
    expect(core.flushReads()).toEqual([{ cmd: 23, conv: 'p3_7', seq: 3 }])
    expect(core.flushReads()).toEqual([])
  })
  it('my own message (another device) means I read up to it', () => {
    const { core } = setup()
    core.receive(msg(1))
    core.receive(msg(2))
    core.receive(msg(3, { userid: 3, dstid: 7 }))
    expect(core.convs.p3_7.unread).toBe(0)
    expect(core.flushReads()).toEqual([{ cmd: 23, conv: 'p3_7', seq: 3 }])
  })
})

describe('outgoing messages', () => {
  let t
  beforeEach(() => { t = setup() })

  it('sends with a cid, pending until acked, then ordered by seq', () => {
    const m = t.core.compose({ cmd: 10, dstid: 7, media: 1, content: 'hi' })
    expect(m.state).toBe(SEND_STATE.PENDING)
    expect(t.sent).toEqual([{ cmd: 10, dstid: 7, media: 1, content: 'hi', cid: m.cid }])
    const c = t.core.convs.p3_7
    expect(c.pending).toHaveLength(1)
    t.core.onAck({ cmd: 1, cid: m.cid, id: 981, seq: 1, conv: 'p3_7', ts: 5 })
    expect(c.pending).toHaveLength(0)
    expect(c.msgs[0]).toMatchObject({ id: 981, seq: 1, state: 'sent', content: 'hi' })
    expect(t.core.outbox).toHaveLength(0)
  })

  it('queues while offline and resends the same cid on reconnect', () => {
    t.net.online = false
    const a = t.core.compose({ cmd: 10, dstid: 7, media: 1, content: 'a' })
    const b = t.core.compose({ cmd: 11, dstid: 5, media: 1, content: 'b' })
    expect(t.sent).toHaveLength(0)
    t.net.online = true
    t.core.flushOutbox()
    expect(t.sent.map((f) => f.cid)).toEqual([a.cid, b.cid])
  })

  it('resends unacked messages after a reconnect with the same cid', () => {
    const a = t.core.compose({ cmd: 10, dstid: 7, media: 1, content: 'a' })
    t.core.onDisconnect()
    t.core.flushOutbox()
    expect(t.sent.map((f) => f.cid)).toEqual([a.cid, a.cid])
    // the server answers both with the same ack; the second is a no-op
    t.core.onAck({ cid: a.cid, id: 1, seq: 1, conv: 'p3_7', ts: 1 })
    t.core.onAck({ cid: a.cid, id: 1, seq: 1, conv: 'p3_7', ts: 1 })
    expect(t.core.convs.p3_7.msgs).toHaveLength(1)
  })

  it('resends after retry_after on a retryable refusal, then gives up to the user', () => {
    const m = t.core.compose({ cmd: 10, dstid: 7, media: 1, content: 'x' })
    t.core.onError({ cmd: 2, code: 5030, error: 'overloaded', msg: 'busy', cid: m.cid, retry_after: 2 })
    expect(m.state).toBe(SEND_STATE.PENDING) // not failed: the server said "later"
    t.tick(1000)
    t.core.checkTimeouts()
    expect(t.sent).toHaveLength(1) // not before retry_after
    t.tick(1500)
    t.core.checkTimeouts()
    expect(t.sent.map((f) => f.cid)).toEqual([m.cid, m.cid]) // the same cid: stored once
    for (let i = 1; i < 6; i++) {
      t.core.onError({ cmd: 2, code: 5000, error: 'internal', msg: 'retry', cid: m.cid })
      t.tick(1000)
      t.core.checkTimeouts()
    }
    expect(m.state).toBe(SEND_STATE.FAILED) // after 5 automatic resends the user decides
    expect(t.sent).toHaveLength(6)
  })

  it('marks refused messages failed and retries with the same cid', () => {
    const m = t.core.compose({ cmd: 10, dstid: 7, media: 1, content: 'x' })
    t.core.onError({ cmd: 2, code: 4007, error: 'bad_url', msg: 'not this server', cid: m.cid })
    expect(m.state).toBe(SEND_STATE.FAILED)
    t.core.flushOutbox()
    expect(t.sent).toHaveLength(1) // refused ones wait for the user
    t.core.retry(m.cid)
    expect(m.state).toBe(SEND_STATE.PENDING)
    expect(t.sent.map((f) => f.cid)).toEqual([m.cid, m.cid])
  })

  it('times out unacked messages, and resends timed-out ones on reconnect', () => {
    const m = t.core.compose({ cmd: 10, dstid: 7, media: 1, content: 'x' })
    t.tick(10000)
    t.core.checkTimeouts()
    expect(m.state).toBe(SEND_STATE.PENDING)
    t.tick(6000)
    t.core.checkTimeouts()
    expect(m.state).toBe(SEND_STATE.FAILED)
    t.core.flushOutbox()
    expect(m.state).toBe(SEND_STATE.PENDING)
    expect(t.sent).toHaveLength(2)
  })

  it('an own copy arriving by sync settles the pending message', () => {
    const m = t.core.compose({ cmd: 10, dstid: 7, media: 1, content: 'x' })
    t.core.receive({ ...msg(1), userid: 3, dstid: 7, cid: m.cid }, { live: false })
    expect(t.core.outbox).toHaveLength(0)
    expect(t.core.convs.p3_7.msgs).toHaveLength(1)
    expect(t.core.onAck({ cid: m.cid, id: 1, seq: 1 })).toBeNull()
  })

  it('discard drops a failed message', () => {
    const m = t.core.compose({ cmd: 10, dstid: 7, media: 1, content: 'x' })
    t.core.onError({ cid: m.cid, error: 'not_friend' })
    t.core.discard(m.cid)
    expect(t.core.convs.p3_7.pending).toHaveLength(0)
    expect(t.core.convs.p3_7.last).toBeNull()
  })
})

describe('sync', () => {
  it('asks for conversations with gaps, then pages until more is false', () => {
    const { core } = setup()
    core.receive(msg(1))
    core.receive(msg(2))
    const list = core.requestConvList()
    expect(list.cmd).toBe(21)
    expect(core.syncing).toBe(true)
    const s1 = core.applyConvList({
      cmd: 31, rid: list.rid,
      convs: [
        { conv: 'p3_7', cmd: 10, dstid: 7, last_seq: 5, read_seq: 2, unread: 3, last: msg(5) },
        { conv: 'g5', cmd: 11, dstid: 5, last_seq: 100, read_seq: 100, unread: 0, last: { ...msg(100), conv: 'g5' } },
        { conv: 'g6', cmd: 11, dstid: 6, last_seq: 4, read_seq: 4, unread: 0 },
      ],
    })
    // p3_7 from its cursor; g5 never loaded → only the last initialWindow (30); g6 from 0.
    expect(s1.cmd).toBe(20)
    expect(s1.after).toEqual({ p3_7: 2, g5: 70, g6: 0 })
    expect(core.convs.p3_7.unread).toBe(3)
    const s2 = core.applySyncPage({
      cmd: 30, rid: s1.rid, msgs: [msg(3), msg(4)], after: { p3_7: 4, g5: 70, g6: 0 }, more: true,
    })
    expect(s2.after).toEqual({ p3_7: 4, g5: 70, g6: 0 })
    expect(core.syncing).toBe(true)
    const done = core.applySyncPage({ cmd: 30, rid: s2.rid, msgs: [msg(5)], after: { p3_7: 5 }, more: false })
    expect(done).toBeNull()
    expect(core.syncing).toBe(false)
    expect(core.convs.p3_7.msgs.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5])
    // unread came from the list; synced messages below its last_seq are not counted twice
    expect(core.convs.p3_7.unread).toBe(3)
    expect(core.convs.g5.unread).toBe(0)
  })

  it('a live message before the list does not narrow the initial window (reload race)', () => {
    const { core } = setup()
    core.requestConvList()
    core.receive(msg(41)) // the peer wrote while the list reply was on its way
    expect(core.convs.p3_7.floor).toBe(40)
    const s = core.applyConvList({ cmd: 31, convs: [{ conv: 'p3_7', cmd: 10, dstid: 7, last_seq: 41, read_seq: 40 }] })
    expect(s.after).toEqual({ p3_7: 11 })
    const page = Array.from({ length: 30 }, (_, i) => msg(12 + i))
    expect(core.applySyncPage({ cmd: 30, rid: s.rid, msgs: page, more: false })).toBeNull()
    const c = core.convs.p3_7
    expect(c.msgs.map((m) => m.seq)).toEqual(Array.from({ length: 30 }, (_, i) => 12 + i))
    expect([c.floor, c.contig]).toEqual([11, 41])
    // After the list, a window a live message starts is the real one (reconnects keep it).
    core.receive({ ...msg(50), conv: 'g9', cmd: 11, dstid: 9 })
    expect(core.applyConvList({ cmd: 31, convs: [{ conv: 'g9', cmd: 11, dstid: 9, last_seq: 50, read_seq: 50 }] }))
      .toBeNull()
    expect(core.convs.g9.floor).toBe(49)
  })

  it('nothing to sync when up to date', () => {
    const { core } = setup()
    core.receive(msg(1))
    expect(core.applyConvList({ cmd: 31, convs: [{ conv: 'p3_7', last_seq: 1, unread: 0 }] })).toBeNull()
    expect(core.syncing).toBe(false)
  })

  it('a live message arriving during sync is not duplicated', () => {
    const { core } = setup()
    const s = core.applyConvList({ cmd: 31, convs: [{ conv: 'p3_7', last_seq: 2, unread: 2 }] })
    core.receive(msg(3))
    core.applySyncPage({ cmd: 30, rid: s.rid, msgs: [msg(1), msg(2), msg(3)], more: false })
    expect(core.convs.p3_7.msgs.map((m) => m.seq)).toEqual([1, 2, 3])
    expect(core.convs.p3_7.unread).toBe(3)
  })

  it('pages history backwards through cmd 22', () => {
    const { core } = setup()
    const s = core.applyConvList({ cmd: 31, convs: [{ conv: 'p3_7', last_seq: 100, unread: 0, read_seq: 100 }] })
    expect(s.after).toEqual({ p3_7: 70 })
    const page = []
    for (let i = 71; i <= 100; i++) page.push(msg(i))
    core.applySyncPage({ cmd: 30, rid: s.rid, msgs: page, more: false })
    expect(core.hasOlder('p3_7')).toBe(true)
    const h = core.olderFrame('p3_7')
    expect(h).toMatchObject({ cmd: 22, conv: 'p3_7', before: 71, limit: 50 })
    expect(core.olderFrame('p3_7')).toBeNull() // one at a time
    const older = []
    for (let i = 21; i <= 70; i++) older.push(msg(i))
    expect(core.applyHistory({ cmd: 32, rid: h.rid, conv: 'p3_7', msgs: older, more: true })).toBeNull()
    expect(core.convs.p3_7.floor).toBe(20)
    expect(core.convs.p3_7.msgs).toHaveLength(80)
    expect(core.convs.p3_7.msgs[0].seq).toBe(21)
    const h2 = core.olderFrame('p3_7')
    expect(h2).toMatchObject({ cmd: 22, before: 21, limit: 50 })
    core.applyHistory({ cmd: 32, rid: h2.rid, conv: 'p3_7', msgs: Array.from({ length: 20 }, (_, i) => msg(i + 1)), more: false })
    expect(core.hasOlder('p3_7')).toBe(false)
    expect(core.convs.p3_7.msgs.map((m) => m.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
    expect(core.convs.p3_7.unread).toBe(0) // old messages are not new
  })

  it('sorts conversations by last activity', () => {
    const { core } = setup()
    core.receive(msg(1))
    core.receive({ ...msg(1), conv: 'g5', cmd: 11, dstid: 5, ts: 99 })
    expect(core.sortedConvs.map((c) => c.conv)).toEqual(['g5', 'p3_7'])
  })
})

describe('opening conversations', () => {
  it('does not fetch all history for a conversation opened before the list arrives', () => {
    const { core } = setup()
    core.open('p3_7')
    expect(core.convs.p3_7.loaded).toBe(false)
    const s = core.applyConvList({ cmd: 31, convs: [{ conv: 'p3_7', last_seq: 500, unread: 0 }] })
    expect(s.after).toEqual({ p3_7: 470 })
  })
  it('a conversation absent from the list starts empty and complete', () => {
    const { core } = setup()
    core.applyConvList({ cmd: 31, convs: [] })
    core.open('p3_9')
    expect(core.convs.p3_9.loaded).toBe(true)
    expect(core.hasOlder('p3_9')).toBe(false)
  })
})
