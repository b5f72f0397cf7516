// Updates (media 11): applied to the message they name, never drawn, never unread,
// never the list's last; the own stream u<id> hides, clears and sets pinned/muted.
import { describe, expect, it } from 'vitest'
import { ChatCore } from '@imhub/sdk/chatcore.js'

function setup() {
  const sent = []
  const core = new ChatCore({ selfId: 3, send: (f) => { sent.push(f); return true }, now: () => 1000 })
  return { core, sent }
}
const msg = (seq, extra = {}) => ({
  id: 100 + seq, userid: 7, cmd: 10, dstid: 3, media: 1, content: `m${seq}`, conv: 'p3_7', seq, ts: seq * 10, ...extra,
})
const upd = (seq, memo, update, extra = {}) => ({
  id: 900 + seq, userid: 7, cmd: 10, dstid: 3, media: 11, content: '', memo, amount: update.id, conv: 'p3_7', seq,
  ts: seq * 10, update, ...extra,
})

describe('updates (media 11)', () => {
  it('an edit changes the text and marks it edited; not a bubble, not unread, not last', () => {
    const { core } = setup()
    core.receive(msg(1))
    const r = core.receive(upd(2, 'edited', { id: 101, seq: 1, content: 'hello world', edited_at: 555 }))
    expect(r.added).toBe(false)
    expect(r.gap).toBe(false)
    const c = core.convs.p3_7
    expect(c.msgs.map((m) => m.seq)).toEqual([1])
    expect(c.msgs[0].content).toBe('hello world')
    expect(c.msgs[0].edited_at).toBe(555)
    expect(c.unread).toBe(1)
    expect(c.last.seq).toBe(1)
    expect(c.last.content).toBe('hello world')
    expect(c.contig).toBe(2)
    expect(c.lastSeq).toBe(2)
    // the next message after an update is no gap
    expect(core.receive(msg(3)).gap).toBe(false)
    expect(c.unread).toBe(2)
  })
  it('the same update twice (live and sync) is applied once and never drawn', () => {
    const { core } = setup()
    core.receive(msg(1))
    const u = upd(2, 'reactions', { id: 101, seq: 1, reactions: [{ emoji: '👍', count: 1, users: [7] }] })
    core.receive(u)
    expect(core.receive(u, { live: false }).added).toBe(false)
    expect(core.convs.p3_7.msgs[0].reactions).toEqual([{ emoji: '👍', count: 1, users: [7] }])
    core.receive(upd(3, 'reactions', { id: 101, seq: 1, reactions: [] }))
    expect(core.convs.p3_7.msgs[0].reactions).toBeUndefined()
  })
  it('an update for a message not loaded only moves the cursors', () => {
    const { core } = setup()
    core.receive(msg(5))
    const r = core.receive(upd(6, 'edited', { id: 1, seq: 1, content: 'x', edited_at: 1 }))
    expect(r.changed).toEqual([])
    expect(core.convs.p3_7.msgs.length).toBe(1)
  })
  it('pins mark the pinned messages and the conversation keeps the list', () => {
    const { core } = setup()
    core.receive(msg(1))
    core.receive(msg(2))
    core.receive(upd(3, 'pinned', { id: 101, seq: 1, pins: [101] }))
    const c = core.convs.p3_7
    expect(c.pins).toEqual([101])
    expect(c.msgs[0].pinned).toBe(true)
    core.receive(upd(4, 'unpinned', { id: 101, seq: 1, pins: [] }))
    expect(c.pins).toEqual([])
    expect(c.msgs[0].pinned).toBeFalsy()
  })
  it('older updates in a history page do not undo the newer state the page and the list carry', () => {
    const { core } = setup()
    core.applyConvList({ convs: [{ conv: 'p3_7', cmd: 10, dstid: 7, last_seq: 60, read_seq: 60, unread: 0,
      last: msg(60), pins: [150, 101] }] })
    const c = core.convs.p3_7
    const latest = { content: 'new text', edited_at: 50, pinned: true, reactions: [{ emoji: '👍', count: 2, users: [3, 7] }] }
    // The page has the message as it is now, then the updates that led there.
    core.applyHistory({ conv: 'p3_7', more: false, msgs: [
      msg(1, latest),
      upd(2, 'pinned', { id: 101, seq: 1, pins: [101] }),
      upd(3, 'edited', { id: 101, seq: 1, content: 'old text', edited_at: 20 }),
      upd(4, 'reactions', { id: 101, seq: 1, reactions: [{ emoji: '👍', count: 1, users: [7] }] }),
      upd(5, 'unpinned', { id: 101, seq: 1, pins: [] }),
      upd(6, 'pinned', { id: 101, seq: 1, pins: [101] }),
    ] })
    expect(c.pins).toEqual([150, 101])
    const m = c.msgs.find((x) => x.id === 101)
    expect(m.content).toBe('new text')
    expect(m.reactions).toEqual(latest.reactions)
    expect(m.pinned).toBe(true)
    // What comes later still applies.
    core.receive(upd(61, 'edited', { id: 101, seq: 1, content: 'newest', edited_at: 70 }))
    core.receive(upd(62, 'unpinned', { id: 150, seq: 40, pins: [101] }))
    expect(m.content).toBe('newest')
    expect(c.pins).toEqual([101])
    // A sync page: its updates of messages loaded before it apply; of its own messages not.
    core.applySyncPage({ msgs: [
      upd(63, 'reactions', { id: 101, seq: 1, reactions: [] }),
      msg(64, { content: 'edited already', edited_at: 90 }),
      upd(65, 'edited', { id: 164, seq: 64, content: 'before', edited_at: 80 }),
    ], more: false })
    expect(m.reactions).toBeUndefined()
    expect(c.msgs.find((x) => x.id === 164).content).toBe('edited already')
  })
  it('an update from a sync page is not unread and the conversation list skips it', () => {
    const { core } = setup()
    core.applyConvList({ convs: [{ conv: 'p3_7', cmd: 10, dstid: 7, last_seq: 2, read_seq: 1, unread: 0, last: msg(1) }] })
    // (the page has the message as it is now: its update in the same page is old news)
    core.applySyncPage({ msgs: [msg(1, { content: 'new', edited_at: 9 }),
      upd(2, 'edited', { id: 101, seq: 1, content: 'new', edited_at: 9 })] })
    const c = core.convs.p3_7
    expect(c.unread).toBe(0)
    expect(c.msgs.map((m) => m.media)).toEqual([1])
    expect(c.last.content).toBe('new')
  })
})

describe('own stream u<id>', () => {
  const own = (seq, memo, update) => ({
    id: 800 + seq, userid: 3, cmd: 10, dstid: 3, media: 11, content: '', memo, conv: 'u3', seq, ts: seq, update,
  })
  it('is synced with the other conversations from where the list says it ends', () => {
    const { core } = setup()
    const frame = core.applyConvList({
      convs: [{ conv: 'p3_7', cmd: 10, dstid: 7, last_seq: 1, read_seq: 1, last: msg(1) }],
      own: { conv: 'u3', last_seq: 4 },
    })
    expect(frame.after).toEqual({ p3_7: 0 })
    core.applySyncPage({ msgs: [msg(1)] })
    // later (a reconnect) the own stream moved on while this device was away
    const again = core.applyConvList({
      convs: [{ conv: 'p3_7', cmd: 10, dstid: 7, last_seq: 1, read_seq: 1, last: msg(1) }],
      own: { conv: 'u3', last_seq: 6 },
    })
    expect(again.after).toEqual({ u3: 4 })
    expect(core.sortedConvs.map((c) => c.conv)).toEqual(['p3_7'])
    expect(core.totalUnread).toBe(0)
  })
  it('hidden removes the messages; the list preview falls back, never empty', () => {
    const { core } = setup()
    core.receive(msg(1))
    core.receive(msg(2))
    core.receive(own(1, 'hidden', { ids: [102], convs: ['p3_7'] }))
    const c = core.convs.p3_7
    expect(c.msgs.map((m) => m.seq)).toEqual([1])
    expect(c.last.seq).toBe(1)
    // a resent copy from sync does not come back
    expect(core.receive(msg(2), { live: false }).added).toBe(false)
  })
  it('cleared empties the conversation up to a seq; conv sets pinned and muted', () => {
    const { core } = setup()
    core.receive(msg(1))
    core.receive(msg(2))
    core.receive({ ...msg(1), conv: 'g5', cmd: 11, dstid: 5 })
    core.receive(own(1, 'cleared', { conv: 'p3_7', upto: 2 }))
    expect(core.convs.p3_7.msgs).toEqual([])
    expect(core.convs.p3_7.unread).toBe(0)
    core.receive(own(2, 'conv', { conv: 'g5', pinned: true, muted: true }))
    expect(core.convs.g5.pinned).toBe(true)
    expect(core.convs.g5.muted).toBe(true)
    expect(core.sortedConvs[0].conv).toBe('g5')
  })
  it('the list carries pinned, muted, mentioned and pins; reading clears mentioned', () => {
    const { core } = setup()
    core.applyConvList({ convs: [
      { conv: 'p3_7', cmd: 10, dstid: 7, last_seq: 1, read_seq: 1, last: msg(1, { ts: 99 }) },
      { conv: 'g5', cmd: 11, dstid: 5, last_seq: 1, read_seq: 0, pinned: true, muted: true, mentioned: true,
        pins: [7], last: { ...msg(1), conv: 'g5', cmd: 11, dstid: 5, ts: 1 } },
    ] })
    const g = core.convs.g5
    expect([g.pinned, g.muted, g.mentioned, g.pins]).toEqual([true, true, true, [7]])
    expect(core.sortedConvs.map((c) => c.conv)).toEqual(['g5', 'p3_7'])
    core.open('g5')
    expect(g.mentioned).toBe(false)
  })
  it('a live message mentioning me marks the conversation mentioned', () => {
    const { core } = setup()
    core.receive({ ...msg(1), conv: 'g5', cmd: 11, dstid: 5, mentions: [3] })
    expect(core.convs.g5.mentioned).toBe(true)
    core.receive({ ...msg(1), conv: 'g6', cmd: 11, dstid: 6, mentions: [9] })
    expect(core.convs.g6.mentioned).toBeFalsy()
  })
})

describe('reply, mentions and edit window', () => {
  it('a reply carries reply_to and mentions on the wire; my copy draws the quote', async () => {
    const { buildMessageFrame } = await import('@imhub/sdk/protocol.js')
    const f = buildMessageFrame({ cmd: 11, dstid: 5, media: 1, content: 'hi', reply_to: 101, mentions: [7, '9'], reply: { id: 1 } })
    expect(f).toEqual({ cmd: 11, dstid: 5, media: 1, content: 'hi', reply_to: 101, mentions: [7, 9] })
    expect(buildMessageFrame({ cmd: 11, dstid: 5, media: 1, content: 'x', mentions: 'all' }).mentions).toBe('all')
    expect(buildMessageFrame({ cmd: 10, dstid: 5, media: 1, content: 'x', mentions: [] }).mentions).toBeUndefined()
    const { core, sent } = setup()
    const m = core.compose({ cmd: 10, dstid: 7, media: 1, content: 'yes', reply_to: 101, reply: { id: 101, seq: 1, userid: 7, media: 1, excerpt: 'm1' } })
    expect(sent.at(-1).reply_to).toBe(101)
    expect(m.reply.excerpt).toBe('m1')
    const acked = core.onAck({ cid: m.cid, id: 200, seq: 2, ts: 5 })
    expect(acked.reply.excerpt).toBe('m1')
  })
  it('only my acked text messages within 48 h can be edited', () => {
    let now = 1000
    const core = new ChatCore({ selfId: 3, send: () => true, now: () => now })
    const mine = { ...msg(1), userid: 3, state: 'sent', ts: 1000 }
    expect(core.canEdit(mine)).toBe(true)
    expect(core.canEdit({ ...mine, userid: 7 })).toBe(false)
    expect(core.canEdit({ ...mine, media: 4 })).toBe(false)
    expect(core.canEdit({ ...mine, recalled: true })).toBe(false)
    now += 48 * 3600_000
    expect(core.canEdit(mine)).toBe(false)
  })
})
