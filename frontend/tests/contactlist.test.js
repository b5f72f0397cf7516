import { pinyin } from 'pinyin-pro'
import { describe, expect, it } from 'vitest'
import { hide, isHidden, loadMarks, marksKey, prune, saveMarks } from '../src/lib/convmarks.js'
import { indexSections, nameKey, needsPinyin } from '../src/lib/pinyin.js'

describe('contacts by pinyin (issue #18 item 14)', () => {
  it('reads Chinese names as pinyin, surnames as surnames', () => {
    expect(nameKey('曾小贤', pinyin)).toEqual({ key: 'zeng xiao xian', letter: 'Z' })
    expect(nameKey('单雄信', pinyin)).toEqual({ key: 'shan xiong xin', letter: 'S' })
    expect(nameKey('吕布', pinyin).letter).toBe('L')
    expect(nameKey('Bob', pinyin)).toEqual({ key: 'bob', letter: 'B' })
    expect(nameKey('1号', pinyin).letter).toBe('#')
    expect(nameKey('张三').letter).toBe('#') // before the dictionary is loaded
    expect(needsPinyin(['Bob', 'alice'])).toBe(false)
    expect(needsPinyin(['Bob', '张三'])).toBe(true)
  })
  it('sorts into letter sections, Latin names among Chinese ones, # last', () => {
    const names = ['张三', 'Zoe', '李四', 'alice', '😀 Smiley', '曾小贤', '阿明', 'Bob', '7 Eleven', '欧阳', '刘备']
    const sections = indexSections(names, (n) => n, pinyin)
    expect(sections.map((s) => [s.letter, s.items])).toEqual([
      ['A', ['阿明', 'alice']], // 'a ming' < 'alice'
      ['B', ['Bob']],
      ['L', ['李四', '刘备']],
      ['O', ['欧阳']],
      ['Z', ['曾小贤', '张三', 'Zoe']],
      ['#', ['😀 Smiley', '7 Eleven']],
    ])
  })
})

function memoryStorage() {
  /** @type {Map<string, string>} */
  const m = new Map()
  return {
    getItem: (k) => m.get(k) ?? null,
    setItem: (k, v) => { m.set(k, String(v)) },
    removeItem: (k) => { m.delete(k) },
    m,
  }
}

describe('chat list marks kept by the browser', () => {
  it('hides a conversation until a newer message, per user, across reloads', () => {
    const store = memoryStorage()
    const marks = loadMarks(7, store)
    const c = { conv: 'p3_7', lastSeq: 12 }
    hide(marks, c)
    marks.unread.g5 = true
    saveMarks(7, marks, store)
    const again = loadMarks(7, store)
    expect(isHidden(again, c)).toBe(true)
    expect(again.unread).toEqual({ g5: true })
    expect(loadMarks(8, store)).toEqual({ hidden: {}, unread: {} }) // another user's list
    expect(prune(again, [c])).toBe(false)
    const newer = { conv: 'p3_7', lastSeq: 13 }
    expect(isHidden(again, newer)).toBe(false)
    expect(prune(again, [newer])).toBe(true)
    expect(again.hidden).toEqual({})
    again.unread = {}
    saveMarks(7, again, store)
    expect(store.m.has(marksKey(7))).toBe(false)
    store.setItem(marksKey(9), '{not json')
    expect(loadMarks(9, store)).toEqual({ hidden: {}, unread: {} })
  })
})
