/**
 * Whether `next` (from a URL's query) is a path inside this app: it must start with one
 * '/', never '//' or '/\\' (a browser reads those as another host).
 * @param {unknown} next
 * @returns {next is string}
 */
export function isAppPath(next) {
  return typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\')
}
