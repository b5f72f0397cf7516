// Files and video (docs/protocol.md "Files and video"): the message bodies built from an
// upload reply, and what a bubble shows of them. Pure functions, tested in tests/attach.test.js.
import { MEDIA, safeUrl } from '@imhub/sdk/protocol.js'

/** A human size: 812 B, 47.1 KB, 3.2 MB, 1.1 GB. */
export function formatSize(bytes) {
  let n = Math.max(0, Number(bytes) || 0)
  if (n < 1024) return `${n} B`
  for (const unit of ['KB', 'MB', 'GB']) {
    n /= 1024
    if (n < 1024 || unit === 'GB') return `${n < 10 ? n.toFixed(1) : Math.round(n)} ${unit}`
  }
  return ''
}

/** A video's duration in ms as m:ss (h:mm:ss from an hour); '' when unknown. */
export function formatDuration(ms) {
  const total = Math.round((Number(ms) || 0) / 1000)
  if (total <= 0) return ''
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = String(total % 60).padStart(2, '0')
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`
}

/** `WxH` of a video's memo as numbers, or null. */
export function videoSize(memo) {
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(String(memo ?? ''))
  if (!m || !Number(m[1]) || !Number(m[2])) return null
  return { width: Number(m[1]), height: Number(m[2]) }
}

/** The short type shown under a file's name: its extension, else the MIME subtype. */
export function fileType(name, mime) {
  const ext = /\.([A-Za-z0-9]{1,8})$/.exec(String(name ?? ''))
  if (ext) return ext[1].toUpperCase()
  const sub = String(mime ?? '').split('/')[1]
  return sub ? sub.toUpperCase() : ''
}

/** Where a file is downloaded from: saved under its name (the server keeps the extension safe). */
export function downloadHref(url, name) {
  const safe = safeUrl(url)
  if (!safe) return ''
  const u = new URL(safe)
  if (name) u.searchParams.set('name', String(name))
  return u.href
}

/** The last path segment of a picked file's name (some browsers give a path). */
export function baseName(name) {
  const last = String(name ?? '').split(/[\\/]/).pop() || ''
  const s = [...last].filter((c) => c.charCodeAt(0) >= 32 && c.charCodeAt(0) !== 127).join('').trim()
  return s.slice(0, 255) || 'file'
}

/**
 * The message to send for an upload reply: a video with poster, duration and size,
 * anything else as a file with its name, size and type.
 * @param {{url: string, kind?: string, mime?: string, size?: number, thumb?: string,
 *   duration_ms?: number, width?: number, height?: number}} f
 * @param {string} name the picked file's name
 */
export function attachmentMessage(f, name) {
  if (f.kind === 'video') {
    const body = { media: MEDIA.VIDEO, url: f.url, pic: f.thumb || '', amount: Math.max(0, Math.round(f.duration_ms || 0)) }
    if (f.width && f.height) body.memo = `${f.width}x${f.height}`
    return body
  }
  return { media: MEDIA.FILE, content: baseName(name), url: f.url, amount: Math.max(0, f.size || 0), memo: f.mime || '' }
}
