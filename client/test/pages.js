'use strict'
// sessions() reads every page of GET /me/sessions (20 a page by default). The Go e2e test
// TestMiniProgramClientPages raises SESSION_MAX_PER_USER on the running stack so that one
// user can hold more sessions than a page.
const { describe, test } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./helpers.js')
const { KINDS } = require('./platforms.js')

const DEVICES = 25

for (const kind of KINDS) {
  describe(kind + ': device list pages', () => {
    test('sessions() follows next_cursor to the last page', async () => {
      const { dev, client } = h.device(kind)
      await client.login()
      for (let i = 1; i < DEVICES; i++) await h.rawLogin(dev.openid, { device_id: 'pages-' + kind + '-device-' + String(i).padStart(4, '0') })
      dev.calls.requests.length = 0
      const list = await client.sessions()
      assert.equal(list.length, DEVICES)
      assert.equal(new Set(list.map((s) => s.sid)).size, DEVICES, 'no session twice')
      assert.equal(list.filter((s) => s.current).length, 1)
      const pages = h.requestsTo(dev, /^GET .*\/me\/sessions/)
      assert.equal(pages.length, 2)
      assert.match(pages[1].url, /\/me\/sessions\?cursor=/)
      // Another device's session from the last page can be ended like any other.
      const other = list.slice(20).find((s) => !s.current)
      await client.endSession(other.sid)
      const after = await client.sessions()
      assert.equal(after.length, DEVICES - 1)
      assert.ok(!after.some((s) => s.sid === other.sid))
    })
  })
}
