// The SDK's own tests (node --test, no dependencies): ImhubClient over a fake
// WebSocket — sync after connecting, each message once, the outbox resending with the
// same cid after a reconnect, receipts, typing, and logout. tests/integration/test_js_sdk.py
// runs it against a real server.
import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import { CMD, ImhubClient, MEDIA, SEND_STATE, STATE } from '../src/index.js'

class FakeSocket {
  static all = []
  constructor(url) {
    this.url = url
    this.sent = []
    this.readyState = 0
    FakeSocket.all.push(this)
  }
  send(data) { this.sent.push(JSON.parse(data)) }
  close(code = 1000) { this.readyState = 3; this.onclose?.({ code }) }
  // --- the server side ---
  open() { this.readyState = 1; this.onopen?.() }
  push(frame) { this.onmessage?.({ data: JSON.stringify(frame) }) }
  drop(code = 1006) { this.readyState = 3; this.onclose?.({ code }) }
  last(cmd) { return this.sent.filter((f) => f.cmd === cmd).at(-1) }
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms))
let client

function make() {
  FakeSocket.all = []
  client = new ImhubClient({
    url: 'https://im.example.com/', userId: 3, token: 'tok', WebSocket: FakeSocket, backoff: { base: 1, max: 2 },
  })
  return client
}

afterEach(() => client?.stop())

describe('ImhubClient', () => {
  it('connects with the token, v=2 and autosync=0, then syncs what is missing', async () => {
    const c = make()
    const got = []
    c.on('message', (m, info) => got.push([m.conv, m.seq, m.content, info.live]))
    c.start()
    const ws = FakeSocket.all[0]
    const url = new URL(ws.url)
    assert.equal(url.origin + url.pathname, 'wss://im.example.com/chat')
    assert.deepEqual(Object.fromEntries(url.searchParams), { id: '3', v: '2', autosync: '0', token: 'tok' })
    ws.open()
    assert.equal(c.state, STATE.OPEN)
    const list = ws.last(CMD.CONV_LIST)
    assert.ok(list.rid)
    ws.push({ cmd: CMD.CONV_LIST_REPLY, rid: list.rid, convs: [
      { conv: 'p3_7', cmd: 10, dstid: 7, last_seq: 2, read_seq: 0, delivered_seq: 0, unread: 2 },
    ] })
    const sync = ws.last(CMD.SYNC)
    assert.deepEqual(sync.after, { p3_7: 0 })
    const msg = (seq, content) => ({ cmd: 10, userid: 7, dstid: 3, media: 1, content, conv: 'p3_7', seq, id: 100 + seq })
    ws.push({ cmd: CMD.SYNC_PAGE, rid: sync.rid, msgs: [msg(1, 'a'), msg(2, 'b')], after: { p3_7: 2 }, more: false })
    ws.push(msg(3, 'c'))
    ws.push(msg(3, 'c')) // the same (conv, seq) again: dropped
    ws.push({ ...msg(2, 'b') }) // already synced
    assert.deepEqual(got, [['p3_7', 1, 'a', false], ['p3_7', 2, 'b', false], ['p3_7', 3, 'c', true]])
    assert.equal(c.core.convs.p3_7.unread, 3)
    c.markRead('p3_7')
    assert.deepEqual(ws.last(CMD.READ), { cmd: CMD.READ, conv: 'p3_7', seq: 3 })
    assert.equal(c.core.convs.p3_7.unread, 0)
  })

  it('keeps a message sent offline and resends it with the same cid until acked', async () => {
    const c = make()
    const acks = []
    c.on('ack', (f) => acks.push(f))
    c.start()
    const pending = c.sendText({ user: 7 }, 'hello') // not open yet: queued
    assert.equal(pending.state, SEND_STATE.PENDING)
    const first = FakeSocket.all[0]
    first.open()
    const sent = first.last(CMD.PRIVATE)
    assert.equal(sent.content, 'hello')
    assert.equal(sent.media, MEDIA.TEXT)
    assert.equal(sent.dstid, 7)
    assert.ok(sent.cid)
    first.drop() // lost before the ack
    assert.equal(c.state, STATE.WAITING)
    await tick(20)
    const second = FakeSocket.all[1]
    assert.ok(second, 'reconnected')
    second.open()
    const resent = second.last(CMD.PRIVATE)
    assert.equal(resent.cid, sent.cid)
    second.push({ cmd: CMD.ACK, cid: sent.cid, id: 981, seq: 42, conv: 'p3_7', ts: 1 })
    assert.equal(acks.length, 1)
    const stored = c.core.convs.p3_7.msgs.find((m) => m.cid === sent.cid)
    assert.equal(stored.seq, 42)
    assert.equal(stored.state, SEND_STATE.SENT)
    assert.equal(c.core.outbox.length, 0)
  })

  it('sends typing at most once per interval and reports others typing', () => {
    const c = make()
    const typing = []
    c.on('typing', (f) => typing.push(f.userid))
    c.start()
    const ws = FakeSocket.all[0]
    ws.open()
    c.typing('g12')
    c.typing('g12')
    assert.equal(ws.sent.filter((f) => f.cmd === CMD.TYPING).length, 1)
    ws.push({ cmd: CMD.TYPING_EVENT, conv: 'g12', userid: 9, ttl: 6000 })
    assert.deepEqual(typing, [9])
    assert.deepEqual(c.core.typingUsers('g12'), [9])
  })

  it('edits, reacts, pins, hides, forwards: one request each, the answer applied', async () => {
    const c = make()
    const updated = []
    c.on('updated', (u, info) => updated.push([u.memo, info.conv, info.live]))
    c.start()
    const ws = FakeSocket.all[0]
    ws.open()
    const msg = { cmd: 10, userid: 3, dstid: 7, media: 1, content: 'helo', conv: 'p3_7', seq: 1, id: 101 }
    ws.push(msg)
    const edited = c.edit(101, 'hello')
    const req = ws.last(CMD.EDIT)
    assert.deepEqual({ ...req, rid: 'x' }, { cmd: CMD.EDIT, rid: 'x', id: 101, content: 'hello' })
    const update = { id: 990, userid: 3, cmd: 10, dstid: 7, media: MEDIA.UPDATE, memo: 'edited', amount: 101,
      content: '', conv: 'p3_7', seq: 2, update: { id: 101, seq: 1, content: 'hello', edited_at: 5 } }
    ws.push({ cmd: CMD.CHANGED, rid: req.rid, msg: update })
    assert.equal((await edited).msg.memo, 'edited')
    assert.equal(c.core.convs.p3_7.msgs[0].content, 'hello')
    // Another member's reaction, live.
    ws.push({ ...update, seq: 3, userid: 7, memo: 'reactions',
      update: { id: 101, seq: 1, reactions: [{ emoji: '👍', count: 1, users: [7] }] } })
    assert.equal(c.core.convs.p3_7.msgs[0].reactions[0].count, 1)
    assert.deepEqual(updated, [['edited', 'p3_7', true], ['reactions', 'p3_7', true]])

    c.react(101, '👍', false).catch(() => {})
    c.pin(101).catch(() => {})
    c.hide([101]).catch(() => {})
    c.hideConv('p3_7').catch(() => {})
    c.convSettings('p3_7', { muted: true }).catch(() => {})
    c.forward([101, 102], ['g12', 'p3_9']).catch(() => {})
    const strip = ({ rid, ...f }) => (assert.ok(rid), f)
    assert.deepEqual(ws.sent.slice(-6).map(strip), [
      { cmd: CMD.REACT, id: 101, emoji: '👍', add: false },
      { cmd: CMD.PIN, id: 101, pinned: true },
      { cmd: CMD.HIDE, ids: [101] },
      { cmd: CMD.HIDE, conv: 'p3_7' },
      { cmd: CMD.CONV_SETTINGS, conv: 'p3_7', muted: true },
      { cmd: CMD.FORWARD, ids: [101, 102], to: ['g12', 'p3_9'] },
    ])
  })

  it('answers requests by rid and rejects refusals', async () => {
    const c = make()
    c.start()
    const ws = FakeSocket.all[0]
    ws.open()
    const search = c.request({ cmd: CMD.SEARCH, q: 'x' })
    const asked = ws.last(CMD.SEARCH)
    ws.push({ cmd: CMD.SEARCH_RESULTS, rid: asked.rid, hits: [], more: false })
    assert.deepEqual((await search).hits, [])
    const bad = c.request({ cmd: CMD.HISTORY, conv: 'g99' })
    ws.push({ cmd: CMD.ERROR, rid: ws.last(CMD.HISTORY).rid, code: 4034, error: 'not_in_conversation', msg: 'no' })
    await assert.rejects(bad, /no/)
  })

  it('stops for good when logged out (4001)', async () => {
    const c = make()
    const events = []
    c.on('loggedout', (code) => events.push(code))
    c.start()
    FakeSocket.all[0].open()
    FakeSocket.all[0].drop(4001)
    assert.deepEqual(events, [4001])
    assert.equal(c.state, STATE.CLOSED)
    await tick(20)
    assert.equal(FakeSocket.all.length, 1)
  })
})
