'use strict'
// Ended sessions (docs/design.md §9): after a 401/403 the client asks GET /session, reports
// the reason and logs in again at most once — never after banned or account_deleted — and
// hands a business route's own 401/403 back as is.
const { describe, test } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./helpers.js')

function deviceIdOf(dev) {
  return JSON.parse(dev.storage.get('wxsession.device_id'))
}

/** sidOf finds the stored hash (sid) of a device's session through another session of the user. */
async function sidOf(dev, asID) {
  const r = await h.raw('GET', '/me/sessions', { id: asID })
  assert.equal(r.status, 200, JSON.stringify(r.data))
  const s = r.data.sessions.find((x) => x.device_id === deviceIdOf(dev))
  assert.ok(s, 'the device is in the list')
  return s.sid
}

// How each reason is brought about from outside the device (another device, the same device
// reinstalled, the user's cap).
const ENDINGS = [
  ['logged_out', async (dev, id) => assert.equal((await h.raw('POST', '/logout', { id })).status, 204)],
  [
    'logged_out_all',
    async (dev) => {
      const other = await h.rawLogin(dev.openid)
      assert.equal((await h.raw('POST', '/logout?scope=all', { id: other.session_id })).status, 204)
    }
  ],
  ['replaced', async (dev) => h.rawLogin(dev.openid, { device_id: deviceIdOf(dev) })],
  [
    'revoked',
    async (dev) => {
      const other = await h.rawLogin(dev.openid)
      const sid = await sidOf(dev, other.session_id)
      assert.equal((await h.raw('DELETE', '/me/sessions/' + sid, { id: other.session_id })).status, 204)
    }
  ],
  [
    'evicted',
    async (dev) => {
      // SESSION_MAX_PER_USER is 10 on the test stack: ten more devices push this one out.
      for (let i = 0; i < 10; i++) await h.rawLogin(dev.openid, { device_id: 'evicting-device-' + String(i).padStart(4, '0') })
    }
  ]
]

module.exports = function defineEnded(kind) {
  const device = (o) => h.device(kind, o)

  describe(kind + ': ended sessions', () => {
    for (const [reason, end] of ENDINGS) {
      test(reason + ': reported once, then one re-login and the request succeeds', async () => {
        const { dev, client } = device()
        const events = []
        client.onSessionEnded((e) => events.push(e))
        await client.login()
        const old = client.session().session_id
        await end(dev, old)
        assert.deepEqual(await h.sessionState(old), { state: 'ended', reason })
        dev.calls.requests.length = 0
        const res = await client.request({ url: '/me/profile', method: 'PUT', data: { nickname: reason } })
        assert.equal(res.statusCode, 200)
        assert.equal(res.data.nickname, reason)
        assert.deepEqual(events, [{ reason }])
        assert.equal(dev.calls.login, 2)
        assert.deepEqual(
          dev.calls.requests.map((r) => r.method + ' ' + r.url.replace(h.apiURL, '')),
          ['PUT /me/profile', 'GET /session', 'POST /login', 'PUT /me/profile']
        )
        assert.notEqual(client.session().session_id, old)
        assert.equal((await h.sessionState(client.session().session_id)).state, 'active')
      })
    }

    test('logout() during a login waits for it and ends that session', async () => {
      const { dev, client } = device()
      const events = []
      client.onSessionEnded((e) => events.push(e))
      const [s] = await Promise.all([client.login(), client.logout()])
      assert.equal(client.session(), null)
      assert.deepEqual(await h.sessionState(s.session_id), { state: 'ended', reason: 'logged_out' })
      assert.deepEqual(events, [], 'no event for the device’s own logout')
      assert.equal(dev.calls.login, 1)
    })

    test('concurrent requests on an ended session: one GET /session, one login, one report', async () => {
      const { dev, client } = device()
      const events = []
      client.onSessionEnded((e) => events.push(e))
      await client.login()
      await h.rawLogin(dev.openid, { device_id: deviceIdOf(dev) })
      dev.calls.requests.length = 0
      const results = await Promise.all(Array.from({ length: 6 }, () => client.request({ url: '/me' })))
      for (const r of results) assert.equal(r.statusCode, 200)
      assert.deepEqual(events, [{ reason: 'replaced' }])
      assert.equal(dev.calls.login, 2)
      assert.equal(h.requestsTo(dev, /^GET .*\/session$/).length, 1)
      assert.equal(h.countLogins(dev), 1)
    })

    test('at most one re-login per request: a second denial rejects with the reason', async () => {
      const { dev, client } = device()
      await client.login()
      await h.raw('POST', '/logout', { id: client.session().session_id })
      // Every new session is ended right after login (another device logs out everywhere).
      dev.afterLogin = async (body) => {
        await h.raw('POST', '/logout?scope=all', { id: body.session_id })
      }
      await assert.rejects(client.request({ url: '/me' }), (e) => {
        assert.equal(e.kind, 'session_ended')
        assert.equal(e.reason, 'logged_out_all')
        return true
      })
      assert.equal(dev.calls.login, 2)
      assert.deepEqual(
        dev.calls.requests.slice(1).map((r) => r.method + ' ' + r.url.replace(h.apiURL, '')),
        ['GET /me', 'GET /session', 'POST /login', 'GET /me', 'GET /session']
      )
    })

    test('a business route’s 401/403 while the session is active is handed back: no re-login, no replay', async () => {
      const proxy = await h.businessProxy()
      try {
        const { dev, client } = device({ baseURL: proxy.url })
        const events = []
        client.onSessionEnded((e) => events.push(e))
        await client.login()
        const id = client.session().session_id
        const res = await client.request({ url: '/biz/orders/42/cancel', method: 'POST', data: { why: 'test' } })
        assert.equal(res.statusCode, 403)
        assert.equal(res.data.error, 'not_your_order')
        assert.equal(proxy.hits.length, 1, 'the POST is not replayed')
        assert.equal(proxy.hits[0].auth, 'Bearer ' + id, 'same origin: the session is sent')
        assert.equal(dev.calls.login, 1, 'no re-login')
        assert.equal(h.requestsTo(dev, /^GET .*\/session$/).length, 1)
        assert.deepEqual(events, [])
        assert.equal(client.session().session_id, id, 'the session is kept')
      } finally {
        await proxy.close()
      }
    })
  })
}
