import { describe, expect, it } from 'vitest'
import {
  attachmentMessage, baseName, downloadHref, fileType, formatDuration, formatSize, videoSize,
} from '../src/lib/attach.js'
import { dicts } from '../src/lib/i18n.js'
import { MEDIA, buildMessageFrame, summary } from '@imhub/sdk/protocol.js'

describe('files and video', () => {
  it('formats sizes and durations', () => {
    expect(formatSize(0)).toBe('0 B')
    expect(formatSize(812)).toBe('812 B')
    expect(formatSize(48213)).toBe('47 KB')
    expect(formatSize(3 * 1024 * 1024 + 200 * 1024)).toBe('3.2 MB')
    expect(formatSize(5 * 1024 ** 4)).toBe('5120 GB')
    expect(formatDuration(0)).toBe('')
    expect(formatDuration(15040)).toBe('0:15')
    expect(formatDuration(61_500)).toBe('1:02')
    expect(formatDuration(3_723_000)).toBe('1:02:03')
  })
  it('reads a video size and a file type', () => {
    expect(videoSize('1280x720')).toEqual({ width: 1280, height: 720 })
    expect(videoSize('0x720')).toBeNull()
    expect(videoSize('big')).toBeNull()
    expect(fileType('季度报告.pdf', 'application/pdf')).toBe('PDF')
    expect(fileType('README', 'application/zip')).toBe('ZIP')
    expect(fileType('', '')).toBe('')
  })
  it('downloads under the file name, only from http(s) URLs', () => {
    expect(downloadHref('/mnt/ab.pdf', 'a b&c.pdf')).toBe('http://localhost/mnt/ab.pdf?name=a+b%26c.pdf')
    expect(downloadHref('javascript:alert(1)', 'x.pdf')).toBe('')
    expect(baseName('C:\\tmp\\x.pdf')).toBe('x.pdf')
    expect(baseName('a\nb.pdf')).toBe('ab.pdf')
    expect(baseName('')).toBe('file')
  })
  it('builds a video or a file message from the upload reply', () => {
    const video = { url: '/mnt/v.mp4', kind: 'video', mime: 'video/mp4', size: 9, thumb: '/mnt/v_t.jpg',
      duration_ms: 1500.4, width: 96, height: 64 }
    expect(attachmentMessage(video, 'clip.mp4')).toEqual(
      { media: MEDIA.VIDEO, url: '/mnt/v.mp4', pic: '/mnt/v_t.jpg', amount: 1500, memo: '96x64' })
    const pdf = { url: '/mnt/f.pdf', kind: 'file', mime: 'application/pdf', size: 48213 }
    const body = attachmentMessage(pdf, 'dir/report.pdf')
    expect(body).toEqual({ media: MEDIA.FILE, content: 'report.pdf', url: '/mnt/f.pdf', amount: 48213,
      memo: 'application/pdf' })
    expect(buildMessageFrame({ cmd: 10, dstid: 2, cid: 'c', ...body })).toEqual(
      { cmd: 10, dstid: 2, media: 12, content: 'report.pdf', url: '/mnt/f.pdf', amount: 48213,
        memo: 'application/pdf', cid: 'c' })
  })
  it('summarises a file by its name', () => {
    const t = (k) => dicts.en[k]
    expect(summary({ media: 12, content: 'report.pdf' }, t)).toBe('[File] report.pdf')
    expect(summary({ media: 8 }, t)).toBe('[Video]')
  })
})
