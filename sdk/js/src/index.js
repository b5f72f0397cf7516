// @imhub/sdk: the protocol core of imhub's web client (docs/protocol.md), no framework.
//   ImhubClient   everything wired together, with events (client.js)
//   Connection    the WebSocket: heartbeat, dead-socket detection, reconnect with backoff
//   ChatCore      conversation windows, sync, outbox with cid retry, receipts, typing
//   protocol.js   command/media numbers, conversation ids, frame builders
export { ImhubClient } from './client.js'
export { Connection, STATE } from './connection.js'
export { ChatCore, RECEIPT, SEND_STATE } from './chatcore.js'
export { backoffDelay } from './backoff.js'
export * from './protocol.js'
