// Types of @imhub/sdk (the JavaScript sources carry the same as JSDoc).

export type Frame = Record<string, any>

export declare const CMD: Readonly<{
  HEARTBEAT: 0; ACK: 1; ERROR: 2; PRIVATE: 10; GROUP: 11; SYNC: 20; CONV_LIST: 21; HISTORY: 22; READ: 23;
  TYPING: 24; RECALL: 25; RECEIPTS: 26; SEARCH: 27; SYNC_PAGE: 30; CONV_LIST_REPLY: 31; HISTORY_PAGE: 32;
  RECEIPT: 33; TYPING_EVENT: 34; PRESENCE: 35; RECALLED: 36; RESYNC: 37; RECEIPT_LIST: 38; SEARCH_RESULTS: 39;
  NOTICE: 40; FRIEND_REQUEST: 41; GROUP_REQUEST: 42; CHANGED: 43; PROFILE: 44;
  EDIT: 50; REACT: 51; HIDE: 52; PIN: 53; CONV_SETTINGS: 54; FORWARD: 55
}>
export declare const MEDIA: Readonly<{
  TEXT: 1; NEWS: 2; VOICE: 3; IMAGE: 4; REDPACKET: 5; STICKER: 6; LINK: 7; VIDEO: 8; CONTACT: 9; EVENT: 10;
  UPDATE: 11; FILE: 12
}>
export declare const RECALL_WINDOW_MS: number
export declare const EDIT_WINDOW_MS: number
export declare const QUICK_REACTIONS: readonly string[]
export declare const TYPING_INTERVAL_MS: number
export declare const CLOSE_LOGGED_OUT: number

export declare function convId(cmd: number, selfId: number, dstid: number | string): string
export declare function parseConv(conv: string, selfId: number): { cmd: number; dstid: number } | null
export declare function messageConv(msg: Frame, selfId: number): string
export declare function newCid(now?: number, rand?: () => number): string
export declare function newRid(prefix?: string): string
export declare function buildMessageFrame(msg: { cmd: number; dstid: number | string; media: number; cid?: string } & Frame): Frame
export declare function heartbeatFrame(): Frame
export declare function syncFrame(after: Record<string, number>, limit?: number, rid?: string): Frame
export declare function convListFrame(rid?: string): Frame
export declare function historyFrame(conv: string, before?: number, limit?: number, rid?: string): Frame
export declare function readFrame(conv: string, seq: number): Frame
export declare function typingFrame(conv: string): Frame
export declare function recallFrame(id: number, rid?: string): Frame
export declare function receiptsFrame(conv: string, rid?: string): Frame
export declare function searchFrame(q: string, before?: number, limit?: number, rid?: string): Frame
/** cmd 50–55 (docs/protocol.md): each answered by cmd 43 (CMD.CHANGED) with its rid. */
export declare function editFrame(id: number, content: string, rid?: string): Frame
export declare function reactFrame(id: number, emoji: string, add?: boolean, rid?: string): Frame
export declare function hideFrame(what: { ids?: number[]; conv?: string }, rid?: string): Frame
export declare function pinFrame(id: number, pinned?: boolean, rid?: string): Frame
export declare function convSettingsFrame(conv: string, settings: { pinned?: boolean; muted?: boolean }, rid?: string): Frame
export declare function forwardFrame(ids: number[], to: string[], rid?: string): Frame
export declare function safeUrl(url: unknown): string
export declare function linkify(text: string): Array<{ text: string; href?: string }>
export declare function highlight(text: string, q: string): Array<{ text: string; hit?: boolean }>
export declare function snippetParts(
  hit: Frame, q: string, t?: (key: string, vars?: any) => string, name?: (id: number) => string
): Array<{ text: string; mark?: boolean }>
export declare function summary(msg: Frame, t?: (key: string, params?: object) => string, name?: (id: number) => string): string
export declare function eventText(
  msg: Frame, t?: (key: string, params?: Record<string, unknown>) => string,
  name?: (id: number, role?: 'subject' | 'object') => string
): string
export declare function backoffDelay(attempt: number, o?: { base?: number; max?: number; random?: () => number }): number

export type SendState = 'pending' | 'failed' | 'sent'
export declare const SEND_STATE: Readonly<{ PENDING: 'pending'; FAILED: 'failed'; SENT: 'sent' }>
export declare const RECEIPT: Readonly<{ NONE: ''; SENT: 'sent'; DELIVERED: 'delivered'; READ: 'read' }>

/** A message as kept by the core: a server frame (cmd 10/11) plus its local state. */
export interface Msg {
  conv: string
  seq: number
  id?: number
  cid?: string
  cmd: number
  dstid: number
  userid: number
  media: number
  content?: string
  pic?: string
  url?: string
  memo?: string
  amount?: number
  ts?: number
  state: SendState
  recalled?: boolean
  /** When its text was last edited (an update "edited"). */
  edited_at?: number
  /** `users`: the first 20 who reacted with `emoji`; `count` counts all. */
  reactions?: Reaction[]
  /** Pinned in its conversation (cmd 53). */
  pinned?: boolean
  forwarded?: boolean
  /** The message it replies to, enough to draw the quote. */
  reply?: { id: number; seq: number; userid: number; media: number; excerpt: string; recalled?: boolean; deleted?: boolean }
  mentions?: number[] | 'all'
  /** An update (media 11): what changed, for the message `update.id`. */
  update?: Frame
  /** From a history or sync page: its state includes the updates up to this seq. */
  asOf?: number
  /** Composed here, not acked yet. */
  local?: boolean
  sentAt?: number
  error?: string
  errorMsg?: string
  errorCode?: number
  retryAt?: number
  autoRetries?: number
}

export interface Reaction {
  emoji: string
  count: number
  users?: number[]
}

export interface Conv {
  conv: string
  cmd: number
  dstid: number
  /** Received and acked messages, ascending seq, each (conv, seq) once. */
  msgs: Msg[]
  /** seq (or "id:<id>") → true, for dedupe. */
  seen: Record<string, boolean>
  /** My messages not acked yet. */
  pending: Msg[]
  lastSeq: number
  last: Msg | null
  lastTs: number
  readSeq: number
  readSent: number
  unread: number
  unreadBase: number
  loaded: boolean
  provisional: boolean
  loadingOlder: boolean
  floor: number
  contig: number
  /** I pinned it to the top of my list / muted it (cmd 54). */
  pinned?: boolean
  muted?: boolean
  /** An unread message mentions me. */
  mentioned?: boolean
  /** Its pinned messages' ids, newest first (cmd 53). */
  pins?: number[]
  pinsAsOf?: number
  cursors: Record<number, { delivered: number; read: number }>
  receiptsLoaded: boolean
  typing: Record<number, number>
}

export declare class ChatCore {
  constructor(o: {
    selfId: number
    send: (frame: Frame) => boolean
    now?: () => number
    initialWindow?: number
    pageSize?: number
    jumpPageSize?: number
    ackTimeoutMs?: number
    recallWindowMs?: number
  })
  selfId: number
  initialWindow: number
  pageSize: number
  jumpPageSize: number
  ackTimeoutMs: number
  recallWindowMs: number
  convs: Record<string, Conv>
  outbox: Msg[]
  /** The conversation on screen ('' when none). */
  activeConv: string
  visible: boolean
  requests: Record<string, { kind: 'sync' | 'history' | 'list' | 'receipts'; conv?: string; until?: number }>
  typingSentAt: Record<string, number>
  syncing: boolean
  listLoaded: boolean
  readonly totalUnread: number
  readonly sortedConvs: Conv[]
  ensureConv(conv: string): Conv
  convFor(cmd: number, dstid: number): Conv
  open(conv: string): Conv
  close(conv: string): void
  setVisible(visible: boolean): void
  compose(body: { cmd: number; dstid: number; media: number } & Frame): Msg
  retry(cid: string): boolean
  discard(cid: string): void
  flushOutbox(): void
  onDisconnect(): void
  checkTimeouts(): void
  onAck(frame: Frame): Msg | null
  onError(frame: Frame): Msg | null
  /** `changed`: an update (media 11) is never `added`; these are the messages it changed. */
  receive(frame: Frame, o?: { live?: boolean; asOf?: number }): {
    added: boolean; gap: boolean; conv: string; msg: Msg; changed?: Msg[]
  }
  requestConvList(): Frame
  applyConvList(frame: Frame): Frame | null
  resyncFrame(onlyConv?: string): Frame | null
  applySyncPage(frame: Frame): Frame | null
  failRequest(rid: string): unknown
  hasOlder(conv: string): boolean
  olderFrame(conv: string): Frame | null
  /** cmd 22 loading down to `seq` (a search hit, a quote) with `context` messages around it. */
  jumpFrame(conv: string, seq: number, context?: number): Frame | null
  applyHistory(frame: Frame): Frame | null
  markRead(conv: string): void
  flushReads(): Frame[]
  receiptsRequest(conv: string): Frame
  applyReceipt(frame: Frame): void
  applyReceiptList(frame: Frame): void
  receiptOf(msg: Msg | null | undefined): string
  readBy(msg: Msg | null | undefined): number
  typingFrame(conv: string): Frame | null
  applyTyping(frame: Frame): void
  typingUsers(conv: string): number[]
  pruneTyping(): number
  canRecall(msg: Msg | null | undefined): boolean
  /** Mine, acked, text, not recalled, inside the edit window. */
  canEdit(msg: Msg | null | undefined): boolean
  recallRequest(msg: Msg): Frame
  applyRecalled(frame: Frame): void
}

export type State = 'idle' | 'connecting' | 'open' | 'waiting' | 'closed'
export declare const STATE: Readonly<{ IDLE: 'idle'; CONNECTING: 'connecting'; OPEN: 'open'; WAITING: 'waiting'; CLOSED: 'closed' }>
export interface StateInfo { attempt: number; nextRetryAt: number; closeCode: number }

export declare class Connection {
  constructor(o: {
    url: () => string
    WebSocketImpl?: any
    onFrame?: (frame: Frame) => void
    onState?: (state: State, info: StateInfo) => void
    onOpen?: () => void
    onLoggedOut?: (code: number) => void
    heartbeatMs?: number
    deadMs?: number
    connectTimeoutMs?: number
    backoff?: { base?: number; max?: number; random?: () => number }
    now?: () => number
  })
  state: State
  readonly isOpen: boolean
  start(): void
  stop(): void
  reconnectNow(): void
  networkLost(): void
  send(frame: Frame): boolean
}

export interface ClientEvents {
  message: (msg: Msg, info: { conv: string; live: boolean }) => void
  /** An update (media 11) was applied: the messages it names (or the conversation) changed. */
  updated: (update: Msg, info: { conv: string; live: boolean }) => void
  ack: (frame: Frame, msg: Msg) => void
  error: (frame: Frame) => void
  receipt: (frame: Frame) => void
  typing: (frame: Frame) => void
  presence: (frame: Frame) => void
  recalled: (frame: Frame) => void
  notice: (frame: Frame) => void
  state: (state: State, info: StateInfo) => void
  loggedout: (code: number) => void
  frame: (frame: Frame) => void
}

export declare class ImhubClient {
  constructor(o: {
    url: string
    userId: number
    token?: string
    WebSocket?: any
    heartbeatMs?: number
    backoff?: { base?: number; max?: number }
    ackTimeoutMs?: number
    checkEveryMs?: number
  })
  readonly userId: number
  readonly core: ChatCore
  readonly connection: Connection
  readonly state: State
  socketUrl(): string
  on<E extends keyof ClientEvents>(event: E, fn: ClientEvents[E]): () => void
  start(): void
  stop(): void
  send(body: { cmd: number; dstid: number; media: number } & Frame): Msg
  sendText(to: string | { user?: number; group?: number }, text: string): Msg
  retry(cid: string): boolean
  markRead(conv: string): void
  open(conv: string): Conv
  close(conv: string): void
  typing(conv: string): void
  loadOlder(conv: string): boolean
  request(frame: Frame, timeoutMs?: number): Promise<Frame>
  /** cmd 50–55: each resolves with the cmd 43 answer (its update already applied to `core`). */
  edit(id: number, content: string): Promise<Frame>
  react(id: number, emoji: string, add?: boolean): Promise<Frame>
  hide(ids: number[]): Promise<Frame>
  hideConv(conv: string): Promise<Frame>
  pin(id: number, pinned?: boolean): Promise<Frame>
  convSettings(conv: string, settings: { pinned?: boolean; muted?: boolean }): Promise<Frame>
  forward(ids: number[], to: string[]): Promise<Frame>
}
