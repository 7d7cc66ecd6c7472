'use strict'
// The client suite, run once per platform (wx.test.js, uni.test.js, taro.test.js) against the
// real local stack. Each simulated device does real HTTP; the emulator hands out real codes.
const { describe, test } = require('node:test')
const assert = require('node:assert/strict')
const { createClient, WxSessionError } = require('../lib/index.js')
const h = require('./helpers.js')

const ID_RE = /^[A-Za-z0-9_-]{16,64}$/

function isKind(kind, extra) {
  return (err) => {
    assert.ok(err instanceof WxSessionError, 'a WxSessionError: ' + err)
    assert.equal(err.kind, kind, err.message)
    if (extra) extra(err)
    return true
  }
}

module.exports = function defineSuite(kind) {
  const device = (o) => h.device(kind, o)

  describe(kind + ': login and requests', () => {
    test('request logs in first, sends the session as a Bearer token, then reuses it', async () => {
      const { dev, client } = device()
      const res = await client.request({ url: '/me' })
      assert.equal(res.statusCode, 200)
      assert.equal(res.data.openid, dev.openid)
      assert.equal(typeof res.header, 'object')
      const s = client.session()
      assert.equal(s.session_id.length, 43)
      assert.equal(s.openid, dev.openid)
      const me = h.requestsTo(dev, /^GET .*\/me$/)
      assert.equal(me[0].auth, 'Bearer ' + s.session_id)
      assert.equal((await client.request({ url: '/me' })).statusCode, 200)
      assert.equal(dev.calls.login, 1, 'one wx.login')
      assert.equal(h.countLogins(dev), 1, 'one POST /login')
    })

    test('login sends a stable device_id and the device, kept across restarts and logins', async () => {
      const { dev, client } = device()
      await client.login()
      const [first] = h.requestsTo(dev, /^POST .*\/login$/)
      assert.match(first.data.device_id, ID_RE)
      assert.deepEqual(first.data.device, { platform: 'ios', brand: 'Apple', model: 'iPhone 15 Pro<iPhone16,1>', system: 'iOS 17.4.1' })
      await client.login()
      // An app restart: a new client over the same storage.
      const again = device({ openid: dev.openid, storage: dev.storage })
      await again.client.login()
      const ids = h.requestsTo(dev, /^POST .*\/login$/).concat(h.requestsTo(again.dev, /^POST .*\/login$/)).map((r) => r.data.device_id)
      assert.deepEqual(ids, [ids[0], ids[0], ids[0]])
      assert.notEqual(device().client, null)
      const other = device()
      await other.client.login()
      assert.notEqual(h.requestsTo(other.dev, /^POST .*\/login$/)[0].data.device_id, ids[0], 'another device, another id')
    })

    test('concurrent callers share one wx.login and one POST /login', async () => {
      const { dev, client } = device()
      const results = await Promise.all(Array.from({ length: 8 }, () => client.request({ url: '/me' })))
      for (const r of results) assert.equal(r.statusCode, 200)
      assert.equal(dev.calls.login, 1)
      assert.equal(h.countLogins(dev), 1)
      const [a, b] = await Promise.all([client.login(), client.login()])
      assert.equal(a.session_id, b.session_id, 'two concurrent login() calls share one session')
      assert.equal(dev.calls.login, 2)
    })

    test('requests made during a login wait for it and use the new session', async () => {
      const { dev, client } = device()
      await client.login()
      const old = client.session().session_id
      const pending = client.login()
      const results = await Promise.all([client.request({ url: '/me' }), client.request({ url: '/me/profile' })])
      const fresh = await pending
      assert.notEqual(fresh.session_id, old)
      for (const r of results) assert.equal(r.statusCode, 200)
      const sent = dev.calls.requests.filter((r) => /\/me(\/profile)?$/.test(r.url))
      assert.deepEqual(sent.map((r) => r.auth), ['Bearer ' + fresh.session_id, 'Bearer ' + fresh.session_id], 'nothing sent with the replaced session')
    })

    test('request options pass through; any status resolves', async () => {
      const { client } = device()
      const put = await client.request({ url: '/me/profile', method: 'PUT', data: { nickname: '小明', avatar_url: 'https://example.com/a.png' } })
      assert.equal(put.statusCode, 200)
      const got = await client.request({ url: 'me/profile' })
      assert.equal(got.data.nickname, '小明')
      const bad = await client.request({ url: '/me/profile', method: 'PUT', data: '{not json', header: { 'content-type': 'application/json' } })
      assert.equal(bad.statusCode, 400, 'a 4xx other than 401/403 resolves as is')
      const none = await client.request({ url: '/no/such/route' })
      assert.ok(none.statusCode >= 400 && none.statusCode !== 401 && none.statusCode !== 403)
    })

    for (const [name, skew] of [
      ['15 days fast', 15 * h.DAY],
      ['15 days slow', -15 * h.DAY]
    ]) {
      test('a phone clock ' + name + ' makes one login for many requests', async () => {
        await h.withClock(skew, async () => {
          const { dev, client } = device()
          for (let i = 0; i < 5; i++) assert.equal((await client.request({ url: '/me' })).statusCode, 200)
          // An app restart on the same wrong clock keeps the session too.
          const again = device({ openid: dev.openid, storage: dev.storage })
          for (let i = 0; i < 3; i++) assert.equal((await again.client.request({ url: '/me' })).statusCode, 200)
          assert.equal(dev.calls.login + again.dev.calls.login, 1)
          assert.equal(h.countLogins(dev) + h.countLogins(again.dev), 1)
        })
      })
    }

    test('a session past its lifetime on this device is renewed before it is sent', async () => {
      const { dev, client } = device()
      await client.login()
      const lifetime = 15 * h.DAY
      await h.withClock(lifetime, async () => {
        assert.equal((await client.request({ url: '/me' })).statusCode, 200)
      })
      assert.equal(dev.calls.login, 2)
      assert.deepEqual(
        dev.calls.requests.map((r) => r.method + ' ' + r.url.replace(h.apiURL, '')),
        ['POST /login', 'POST /login', 'GET /me'],
        'no request with the old session, no GET /session'
      )
    })
  })

  describe(kind + ': origins', () => {
    test('the session goes only to the API origin; another origin’s 401/403 is handed back as is', async () => {
      for (const status of [401, 403]) {
        const cdn = await h.foreignServer(status)
        try {
          const { dev, client } = device()
          await client.login()
          const res = await client.request({ url: cdn.url + '/image.png', method: 'POST', data: { a: 1 } })
          assert.equal(res.statusCode, status)
          assert.equal(cdn.hits.length, 1, 'no replay')
          assert.equal(cdn.hits[0].auth, '', 'no session sent to another origin')
          assert.equal(dev.calls.login, 1, 'no re-login')
          assert.equal(h.requestsTo(dev, /\/session$/).length, 0, 'no GET /session')
          // Same host, another port is another origin too; the API's own absolute URL is ours.
          const mine = await client.request({ url: h.apiURL + '/me' })
          assert.equal(mine.statusCode, 200)
        } finally {
          await cdn.close()
        }
      }
    })

    test('URLs that only look like the API are other origins', async () => {
      const cdn = await h.foreignServer(200)
      try {
        const { dev, client } = device()
        await client.login()
        const api = new URL(h.apiURL)
        const port = new URL(cdn.url).port
        const urls = [`http://${api.host}@127.0.0.1:${port}/x`, `http://127.0.0.1:${port}/${api.host}/x`, `HTTP://127.0.0.1:${port}/x`]
        for (const url of urls) {
          // fetch refuses URLs with credentials: what matters is what the client handed wx.request.
          await client.request({ url }).catch((e) => assert.equal(e.kind, 'network'))
        }
        const sent = dev.calls.requests.filter((r) => urls.includes(r.url))
        assert.deepEqual(sent.map((r) => r.auth), ['', '', ''])
      } finally {
        await cdn.close()
      }
    })
  })

  describe(kind + ': errors are typed, never silent re-logins', () => {
    test('wx.login failure rejects with kind wx_login', async () => {
      const { dev, client } = device()
      dev.failLogin = true
      await assert.rejects(client.request({ url: '/me' }), isKind('wx_login'))
      assert.equal(h.countLogins(dev), 0)
    })

    test('a refused code rejects with kind login and the server code', async () => {
      const { dev, client } = device()
      dev.loginCode = 'thiscodewasneverissuedbywechat00'
      await assert.rejects(
        client.request({ url: '/me' }),
        isKind('login', (e) => {
          assert.equal(e.statusCode, 401)
          assert.equal(e.code, 'invalid_code')
        })
      )
      assert.equal(client.session(), null)
    })

    test('a failed wx.request rejects with kind network; the session stays, no re-login', async () => {
      const { dev, client } = device()
      await client.login()
      const id = client.session().session_id
      dev.failRequest = (url) => url.endsWith('/me/profile')
      await assert.rejects(client.request({ url: '/me/profile' }), isKind('network'))
      dev.failRequest = null
      assert.equal(client.session().session_id, id)
      assert.equal((await client.request({ url: '/me/profile' })).statusCode, 200)
      assert.equal(dev.calls.login, 1)
      const off = createClient({ baseURL: 'http://127.0.0.1:9', platform: device().dev.api })
      await assert.rejects(off.request({ url: '/me' }), isKind('network'))
    })

    test('a login whose answer was lost posts the same code again instead of a new wx.login', async () => {
      const { dev, client } = device()
      dev.failRequest = (url, method) => method === 'POST' && url.endsWith('/login')
      await assert.rejects(client.login(), isKind('network'))
      dev.failRequest = null
      await client.login()
      assert.equal(dev.calls.login, 1)
      const codes = h.requestsTo(dev, /^POST .*\/login$/).map((r) => r.data.code)
      assert.equal(codes.length, 2)
      assert.equal(codes[0], codes[1])
    })

    test('storage failures reject with kind storage and never log in silently', async () => {
      const a = device()
      a.dev.failStorage = 'read'
      await assert.rejects(a.client.request({ url: '/me' }), isKind('storage'))
      assert.equal(a.dev.calls.login, 0, 'no wx.login when the session cannot be read')
      const b = device()
      b.dev.failStorage = 'write'
      await assert.rejects(b.client.login(), isKind('storage'))
      assert.ok(b.dev.calls.login <= 1)
      b.dev.failStorage = null
      const c = device()
      await c.client.login()
      c.dev.failStorage = 'write'
      const before = c.dev.calls.login
      await assert.rejects(c.client.login(), isKind('storage'))
      assert.equal(c.dev.calls.login, before + 1)
    })

    test('WeChat’s minute quota: 429 with Retry-After, then no wx.login until it passes', async () => {
      const { dev, client } = device()
      await h.emulator('POST', '/test/faults', { errcode: 45011, count: 1 })
      try {
        await assert.rejects(
          client.login(),
          isKind('login', (e) => {
            assert.equal(e.statusCode, 429)
            assert.equal(e.code, 'rate_limited')
            assert.ok(e.retryAfter >= 1, 'retryAfter ' + e.retryAfter)
          })
        )
        await assert.rejects(client.request({ url: '/me' }), isKind('throttled', (e) => assert.ok(e.retryAfter >= 1)))
        assert.equal(dev.calls.login, 1)
      } finally {
        await h.emulator('DELETE', '/test/faults')
      }
    })

    test('at most 10 wx.login calls a minute, then kind throttled', async () => {
      const { dev, client } = device()
      for (let i = 0; i < 10; i++) await client.login()
      await assert.rejects(client.login(), isKind('throttled', (e) => assert.ok(e.retryAfter > 0 && e.retryAfter <= 60)))
      assert.equal(dev.calls.login, 10)
      // A minute later (on the phone's clock) logins work again.
      await h.withClock(61 * 1000, () => client.login())
      assert.equal(dev.calls.login, 11)
    })
  })

  describe(kind + ': logout and devices', () => {
    test('logout ends the session on the server and clears it', async () => {
      const { client } = device()
      await client.login()
      const id = client.session().session_id
      assert.equal((await h.raw('GET', '/me', { id })).status, 200)
      const res = await client.logout()
      assert.equal(res.statusCode, 204)
      assert.equal(client.session(), null)
      assert.equal((await h.raw('GET', '/me', { id })).status, 403)
    })

    test('logout({ all: true }) ends every device of the user', async () => {
      const phone = device()
      await phone.client.login()
      const tablet = device({ openid: phone.dev.openid })
      await tablet.client.login()
      const tabletID = tablet.client.session().session_id
      assert.equal((await phone.client.logout({ all: true })).statusCode, 204)
      assert.equal((await h.raw('GET', '/me', { id: tabletID })).status, 403)
      assert.equal(phone.client.session(), null)
    })

    test('sessions() lists the devices; endSession(sid) ends one', async () => {
      const phone = device()
      await phone.client.login()
      const tablet = device({ openid: phone.dev.openid })
      await tablet.client.login()
      const list = await phone.client.sessions()
      assert.ok(Array.isArray(list))
      assert.equal(list.length, 2)
      const mine = list.filter((s) => s.current)
      assert.equal(mine.length, 1)
      const other = list.find((s) => !s.current)
      await phone.client.endSession(other.sid)
      assert.equal((await h.raw('GET', '/me', { id: tablet.client.session().session_id })).status, 403)
      assert.equal((await phone.client.sessions()).length, 1)
      await assert.rejects(phone.client.endSession(other.sid), isKind('http', (e) => assert.equal(e.statusCode, 404)))
      // Ending the current session forgets it here.
      await phone.client.endSession(mine[0].sid)
      assert.equal(phone.client.session(), null)
    })
  })
}
