// Contacts in the order a Chinese address book uses: by pinyin (surnames read as
// surnames: 曾 zeng, 单 shan), Latin names alphabetically among them, under an index
// letter A–Z; names that start with anything else (digits, emoji) under '#', last.
// pinyin-pro (its dictionary is ~146 kB gzip) is loaded only when a name needs it.

const collator = new Intl.Collator('en', { sensitivity: 'base', numeric: true })
const CJK = /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]/

/** @typedef {(text: string, options: object) => string} Pinyin */

/** @type {Promise<Pinyin> | null} */
let loading = null

/**
 * Does any of these names need pinyin to be sorted?
 * @param {string[]} names
 */
export function needsPinyin(names) {
  return names.some((n) => CJK.test(n))
}

/** pinyin-pro's `pinyin`, loaded once, on first use. */
export function loadPinyin() {
  loading ??= import('pinyin-pro').then((m) => /** @type {Pinyin} */ (m.pinyin))
  return loading
}

/**
 * The sort key (lower-case pinyin, or the name itself) and index letter of a name;
 * without `pinyin` a Chinese name is keyed as written (under '#').
 * @param {string} name
 * @param {Pinyin | null} [pinyin]
 * @returns {{key: string, letter: string}}
 */
export function nameKey(name, pinyin = null) {
  const s = String(name ?? '').trim()
  const spelled = pinyin && CJK.test(s)
    ? pinyin(s, { toneType: 'none', surname: 'head', nonZh: 'consecutive', v: true })
    : s
  const key = spelled.toLowerCase().replace(/\s+/g, ' ')
  const first = key.charAt(0).toUpperCase()
  return { key, letter: first >= 'A' && first <= 'Z' ? first : '#' }
}

/**
 * `items` in sections by index letter (A–Z, then '#'), each sorted by the pinyin of
 * `nameOf(item)`.
 * @template T
 * @param {T[]} items
 * @param {(item: T) => string} nameOf
 * @param {Pinyin | null} [pinyin]
 * @returns {Array<{letter: string, items: T[]}>}
 */
export function indexSections(items, nameOf, pinyin = null) {
  const keyed = items.map((item) => ({ item, ...nameKey(nameOf(item), pinyin) }))
  keyed.sort((a, b) => Number(a.letter === '#') - Number(b.letter === '#') || a.letter.localeCompare(b.letter) ||
    collator.compare(a.key, b.key) || collator.compare(nameOf(a.item), nameOf(b.item)))
  /** @type {Array<{letter: string, items: T[]}>} */
  const sections = []
  for (const k of keyed) {
    const last = sections.at(-1)
    if (last?.letter === k.letter) last.items.push(k.item)
    else sections.push({ letter: k.letter, items: [k.item] })
  }
  return sections
}
