// Hold-to-record voice with MediaRecorder. start() asks for the microphone; stop()
// resolves to {blob, seconds, mime, ext} or null when cancelled / too short.

const TYPES = [
  ['audio/webm;codecs=opus', 'webm'],
  ['audio/ogg;codecs=opus', 'ogg'],
  ['audio/mp4', 'm4a'],
  ['audio/webm', 'webm'],
]

export function pickMime(isSupported = (m) => globalThis.MediaRecorder?.isTypeSupported?.(m)) {
  for (const [mime, ext] of TYPES) if (isSupported(mime)) return { mime, ext }
  return { mime: '', ext: 'webm' }
}

export class VoiceRecorder {
  /**
   * @param {object} [o]
   * @param {number} [o.maxSeconds]  stops by itself after this (onAutoStop)
   * @param {number} [o.minSeconds]  shorter clips resolve as `tooShort`
   * @param {() => void} [o.onAutoStop]
   */
  constructor({ maxSeconds = 60, minSeconds = 1, onAutoStop = undefined } = {}) {
    this.maxSeconds = maxSeconds
    this.minSeconds = minSeconds
    this.onAutoStop = onAutoStop || (() => {})
    this.rec = null
    this.stream = null
    this.chunks = []
    this.startedAt = 0
    this.wanted = false
    this._timer = null
  }

  static supported() {
    return !!(globalThis.navigator?.mediaDevices?.getUserMedia && globalThis.MediaRecorder)
  }

  async start() {
    this.wanted = true
    this.chunks = []
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true })
    if (!this.wanted) {
      // released before the microphone was ready
      stream.getTracks().forEach((tr) => tr.stop())
      return false
    }
    this.stream = stream
    const { mime, ext } = pickMime()
    this.ext = ext
    this.rec = new MediaRecorder(stream, mime ? { mimeType: mime } : undefined)
    this.rec.ondataavailable = (e) => { if (e.data && e.data.size) this.chunks.push(e.data) }
    this.rec.start(250)
    this.startedAt = Date.now()
    this._timer = setTimeout(() => this.onAutoStop(), this.maxSeconds * 1000)
    return true
  }

  get elapsed() {
    return this.startedAt ? (Date.now() - this.startedAt) / 1000 : 0
  }

  /** Stop; `keep` false discards the clip. */
  stop(keep = true) {
    this.wanted = false
    clearTimeout(this._timer)
    const rec = this.rec
    const stream = this.stream
    const seconds = this.elapsed
    this.rec = null
    this.stream = null
    this.startedAt = 0
    if (!rec) return Promise.resolve(null)
    return new Promise((resolve) => {
      rec.onstop = () => {
        stream?.getTracks().forEach((tr) => tr.stop())
        if (!keep || seconds < this.minSeconds || !this.chunks.length) return resolve(keep ? { tooShort: true } : null)
        const mime = rec.mimeType || 'audio/webm'
        resolve({ blob: new Blob(this.chunks, { type: mime }), seconds: Math.round(seconds), mime, ext: this.ext })
      }
      try {
        rec.stop()
      } catch {
        resolve(null)
      }
    })
  }
}
