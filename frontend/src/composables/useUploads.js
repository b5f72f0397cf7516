// Files being uploaded before their message goes out: shown in the chat as bubbles with
// their progress and a cancel button, while the user goes on writing. One list for the
// page (a chat left and reopened shows its uploads still running); when an upload
// finishes its message is sent, whichever page is on screen.
import { reactive } from 'vue'
import { uploadWithProgress } from '../lib/api.js'
import { errorText } from '../lib/i18n.js'

/**
 * @typedef {object} Upload
 * @property {string} id
 * @property {string} conv
 * @property {number} media       what the message will be (image, voice)
 * @property {string} preview     an object URL of a picture, '' otherwise
 * @property {number} progress    0..1
 * @property {'uploading' | 'failed'} state
 * @property {string} error
 * @property {AbortController} ctrl
 */

/** @type {Upload[]} */
const uploads = reactive([])
let counter = 0

function remove(id) {
  const i = uploads.findIndex((u) => u.id === id)
  if (i < 0) return
  const [u] = uploads.splice(i, 1)
  if (u.preview) URL.revokeObjectURL(u.preview)
}

/**
 * @param {object} o
 * @param {string} o.conv
 * @param {number} o.media
 * @param {Blob & {name?: string}} o.file
 * @param {string} o.filename
 * @param {string} [o.hint]
 * @param {boolean} [o.preview]  show the file itself (a picture) in the bubble
 * @param {(f: {url: string} & Record<string, any>) => void} o.done  send the message
 */
function start(o) {
  counter += 1
  const id = `u${Date.now()}-${counter}`
  const ctrl = new AbortController()
  uploads.push({
    id, conv: o.conv, media: o.media, progress: 0, state: 'uploading', error: '', ctrl,
    preview: o.preview && typeof URL.createObjectURL === 'function' ? URL.createObjectURL(o.file) : '',
  })
  const entry = () => uploads.find((u) => u.id === id)
  uploadWithProgress(o.file, o.filename, o.hint || '', {
    signal: ctrl.signal,
    onProgress: (p) => { const u = entry(); if (u) u.progress = p },
  }).then((f) => {
    if (!entry()) return // cancelled meanwhile
    remove(id)
    o.done(f)
  }).catch((err) => {
    const u = entry()
    if (!u || err?.name === 'AbortError') return
    u.state = 'failed'
    u.error = errorText(err)
  })
  return id
}

/** Stop an upload (or dismiss a failed one): nothing is sent. */
function cancel(id) {
  const u = uploads.find((x) => x.id === id)
  if (!u) return
  u.ctrl.abort()
  remove(id)
}

export function useUploads() {
  return { uploads, start, cancel }
}
