// index.d.ts against the sources (node --test, no TypeScript needed): every export of
// src/index.js is declared; ChatCore, ImhubClient and Connection declare each public
// method and getter they have; CMD and MEDIA have the same numbers; ClientEvents names
// every event ImhubClient emits. A method added without its type fails here.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import * as sdk from '../src/index.js'

const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8')
const clientSource = readFileSync(new URL('../src/client.js', import.meta.url), 'utf8')

/** The text between the braces that follow `head` (nested braces balanced). */
function block(head) {
  const start = dts.indexOf(head)
  assert.ok(start >= 0, `index.d.ts has no ${head}`)
  let i = dts.indexOf('{', start)
  const from = i + 1
  for (let depth = 0; i < dts.length; i += 1) {
    if (dts[i] === '{') depth += 1
    else if (dts[i] === '}' && --depth === 0) return dts.slice(from, i)
  }
  throw new Error(`unbalanced ${head}`)
}

/** Member names declared at the top level of a class or interface body. */
function members(body) {
  const names = new Set()
  let depth = 0
  for (const line of body.split('\n')) {
    if (depth === 0) {
      const m = line.match(/^\s+(?:readonly\s+)?([A-Za-z_$][\w$]*)\??\s*[(:<]/)
      if (m) names.add(m[1])
    }
    for (const ch of line) {
      if (ch === '{' || ch === '(') depth += 1
      else if (ch === '}' || ch === ')') depth -= 1
    }
  }
  return names
}

/** Public methods and getters of a class (not `_private`, not the constructor). */
function publicApi(cls) {
  return Object.getOwnPropertyNames(cls.prototype).filter((n) => n !== 'constructor' && !n.startsWith('_'))
}

/** `{ A: 1; B: 2 }` → {A: 1, B: 2} */
function numbers(head) {
  return Object.fromEntries([...block(head).matchAll(/([A-Z_]+):\s*(\d+)/g)].map((m) => [m[1], Number(m[2])]))
}

describe('index.d.ts', () => {
  it('declares every export of the package', () => {
    const missing = Object.keys(sdk).filter((name) =>
      !new RegExp(`export declare (const|function|class) ${name}\\b`).test(dts))
    assert.deepEqual(missing, [])
  })
  for (const cls of ['ChatCore', 'ImhubClient', 'Connection']) {
    it(`declares every public method of ${cls}`, () => {
      const declared = members(block(`export declare class ${cls}`))
      assert.deepEqual(publicApi(sdk[cls]).filter((n) => !declared.has(n)), [])
    })
  }
  it('has the numbers of CMD and MEDIA', () => {
    assert.deepEqual(numbers('export declare const CMD'), { ...sdk.CMD })
    assert.deepEqual(numbers('export declare const MEDIA'), { ...sdk.MEDIA })
  })
  it('names every event ImhubClient emits', () => {
    const emitted = new Set([...clientSource.matchAll(/_emit\('(\w+)'/g)].map((m) => m[1]))
    const declared = members(block('export interface ClientEvents'))
    assert.deepEqual([...emitted].filter((e) => !declared.has(e)), [])
    assert.deepEqual([...declared].filter((e) => !emitted.has(e)), [])
  })
})
