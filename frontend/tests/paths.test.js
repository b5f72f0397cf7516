import { describe, expect, it } from 'vitest'
import { isAppPath } from '../src/lib/paths.js'

describe('isAppPath (the login page\'s ?next=)', () => {
  it('accepts paths inside the app', () => {
    expect(isAppPath('/chats')).toBe(true)
    expect(isAppPath('/join/abc?x=1')).toBe(true)
  })
  it('refuses other hosts and non-paths', () => {
    for (const bad of ['//evil.example/x', '/\\evil.example', 'https://evil.example', 'chats', '', undefined, ['/x']]) {
      expect(isAppPath(bad)).toBe(false)
    }
  })
})
