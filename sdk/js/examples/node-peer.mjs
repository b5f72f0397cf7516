// A Node.js peer on the SDK: connects as one user, sends a text to another user (or to a
// group: g<id>), prints every message it gets as a JSON line, and exits after a reply
// containing "bye".
//   node examples/node-peer.mjs http://127.0.0.1:8080 <userId> <token> <peerId | g<groupId>>
// (Node 20: add --experimental-websocket; Node 22 has WebSocket built in.)
// tests/integration/test_js_sdk.py runs it against a real server and a Python client.
import { ImhubClient } from '../src/index.js'

const [url, userId, token, peer] = process.argv.slice(2)
const im = new ImhubClient({ url, userId: Number(userId), token })
const to = peer.startsWith('g') ? peer : { user: Number(peer) }
let said = false

im.on('state', (state) => {
  console.log(JSON.stringify({ state }))
  if (state === 'open' && !said) {
    said = true
    im.sendText(to, 'hi from js')
  }
})
im.on('ack', (ack) => console.log(JSON.stringify({ ack: { seq: ack.seq, conv: ack.conv, cid: ack.cid } })))
im.on('message', (msg, { live }) => {
  console.log(JSON.stringify({ message: { userid: msg.userid, content: msg.content, seq: msg.seq, live } }))
  if (msg.userid !== im.userId && /bye/.test(msg.content || '')) {
    im.markRead(msg.conv)
    setTimeout(() => { im.stop(); process.exit(0) }, 100)
  }
})
im.on('loggedout', () => process.exit(3))
im.start()
setTimeout(() => process.exit(2), 30000).unref()
