// HTTP API of SPEC §1: POST with a form body, replies {code,msg,data} / {code,msg,rows,total}.
// The session cookie (HttpOnly, set at /user/login) authenticates these calls.

export class ApiError extends Error {
  constructor(msg, status = 200, body = null) {
    super(msg)
    this.status = status
    this.body = body
  }
}

let onUnauthorized = () => {}
/**
 * @param {() => void} fn  called on any HTTP 401
 */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn
}

async function parse(res) {
  let body
  try {
    body = await res.json()
  } catch {
    body = null // not JSON (a proxy's error page)
  }
  if (res.status === 401) {
    onUnauthorized()
    throw new ApiError(body?.msg || 'unauthorized', 401, body)
  }
  if (!body || typeof body !== 'object') throw new ApiError(`HTTP ${res.status}`, res.status)
  if (body.code !== 0) throw new ApiError(body.msg || `HTTP ${res.status}`, res.status, body)
  return body
}

/**
 * @param {string} path
 * @param {Record<string, unknown>} [params]
 * @returns {Promise<{code: number, msg?: string, data?: any, rows?: any[], total?: number}>}
 */
export async function post(path, params = {}) {
  const form = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) form.append(k, String(v))
  let res
  try {
    res = await fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: form,
      credentials: 'same-origin',
    })
  } catch (err) {
    throw new ApiError(err?.message || 'network error', 0)
  }
  return parse(res)
}

/**
 * Upload one file; resolves to `{url, kind, thumb, width, height, duration, ...}`.
 * @param {Blob & {name?: string}} file
 * @param {string} filename
 * @param {string} filetype  a hint (voice clips: the container)
 * @returns {Promise<{url: string} & Record<string, any>>}
 */
export async function upload(file, filename, filetype) {
  const form = new FormData()
  form.append('file', file, filename || file.name || 'file')
  if (filetype) form.append('filetype', filetype)
  let res
  try {
    res = await fetch('/attach/upload', { method: 'POST', body: form, credentials: 'same-origin' })
  } catch (err) {
    throw new ApiError(err?.message || 'network error', 0)
  }
  const body = await parse(res)
  return { url: body.data, ...(body.file || {}) }
}

/**
 * `upload` with progress and cancelling (XMLHttpRequest: fetch reports no upload
 * progress). Rejects with an AbortError-named error when `signal` aborts.
 * @param {Blob & {name?: string}} file
 * @param {string} filename
 * @param {string} filetype
 * @param {{onProgress?: (fraction: number) => void, signal?: AbortSignal}} [o]
 * @returns {Promise<{url: string} & Record<string, any>>}
 */
export function uploadWithProgress(file, filename, filetype, o = {}) {
  return new Promise((resolve, reject) => {
    const form = new FormData()
    form.append('file', file, filename || file.name || 'file')
    if (filetype) form.append('filetype', filetype)
    const xhr = new XMLHttpRequest()
    xhr.open('POST', '/attach/upload')
    xhr.withCredentials = true
    xhr.upload.onprogress = (e) => { if (e.lengthComputable && o.onProgress) o.onProgress(e.loaded / e.total) }
    xhr.onload = () => {
      const res = new Response(xhr.responseText, { status: xhr.status })
      parse(res).then((body) => resolve({ url: body.data, ...(body.file || {}) }), reject)
    }
    xhr.onerror = () => reject(new ApiError('network error', 0))
    xhr.onabort = () => reject(Object.assign(new Error('cancelled'), { name: 'AbortError' }))
    if (o.signal) {
      if (o.signal.aborted) {
        reject(Object.assign(new Error('cancelled'), { name: 'AbortError' }))
        return
      }
      o.signal.addEventListener('abort', () => xhr.abort(), { once: true })
    }
    xhr.send(form)
  })
}

export const api = {
  register: (p) => post('/user/register', p).then((b) => b.data),
  login: (mobile, passwd) => post('/user/login', { mobile, passwd }).then((b) => b.data),
  logout: () => post('/user/logout'),
  me: () => post('/user/me').then((b) => b.data),
  update: (p) => post('/user/update', p).then((b) => b.data),
  findById: (id) => post('/user/find', { id }).then((b) => b.data),
  findByMobile: (mobile) => post('/user/find', { mobile }).then((b) => b.data),
  addFriend: (userid, dstid) => post('/contact/addfriend', { userid, dstid }),
  loadFriends: (userid) => post('/contact/loadfriend', { userid }).then((b) => b.rows || []),
  friendRequests: (box) => post('/contact/friendrequests', { box }).then((b) => b.rows || []),
  acceptFriend: (id) => post('/contact/acceptfriend', { id }).then((b) => b.data),
  declineFriend: (id) => post('/contact/declinefriend', { id }),
  block: (dstid) => post('/contact/block', { dstid }),
  unblock: (dstid) => post('/contact/unblock', { dstid }),
  loadBlocks: () => post('/contact/loadblocks').then((b) => b.rows || []),
  createGroup: (p) => post('/contact/createcommunity', p).then((b) => b.data),
  joinGroup: (userid, dstid) => post('/contact/joincommunity', { userid, dstid }),
  leaveGroup: (userid, dstid) => post('/contact/leavecommunity', { userid, dstid }),
  loadGroups: (userid) => post('/contact/loadcommunity', { userid }).then((b) => b.rows || []),
  renameGroup: (userid, dstid, name) => post('/contact/renamecommunity', { userid, dstid, name }).then((b) => b.data),
  removeMember: (userid, dstid, memberid) => post('/contact/removemember', { userid, dstid, memberid }),
  members: (userid, dstid) => post('/contact/members', { userid, dstid }).then((b) => b.rows || []),
  inviteGroup: (token) => post('/contact/invitegroup', { token }).then((b) => b.data),
  joinByToken: (userid, token) => post('/contact/joincommunity', { userid, token }).then((b) => b.data),
  groupSettings: (dstid, p) => post('/contact/groupsettings', { dstid, ...p }).then((b) => b.data),
  setRole: (dstid, memberid, role) => post('/contact/setrole', { dstid, memberid, role }),
  joinRequests: (dstid) => post('/contact/joinrequests', { dstid }).then((b) => b.rows || []),
  approveJoin: (dstid, memberid) => post('/contact/approvejoin', { dstid, memberid }),
  declineJoin: (dstid, memberid) => post('/contact/declinejoin', { dstid, memberid }),
  inviteLink: (dstid) => post('/contact/invitelink', { dstid }).then((b) => b.data),
  invites: (dstid) => post('/contact/loadinvites', { dstid }).then((b) => b.rows || []),
  revokeInvite: (dstid, id) => post('/contact/revokeinvite', { dstid, id }),
  bans: (dstid) => post('/contact/loadbans', { dstid }).then((b) => b.rows || []),
  unban: (dstid, memberid) => post('/contact/unban', { dstid, memberid }),
}
