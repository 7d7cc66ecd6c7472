'use strict'
// Sessions that end by the server's clocks, with short durations (the Go e2e test
// TestMiniProgramClientClocks sets them on the running stack and runs this file with
// WXSESSION_CLOCK=ttl (SESSION_TTL=3s) or WXSESSION_CLOCK=idle (SESSION_IDLE_TIMEOUT=2s)).
// The waits poll GET /session until the server says the session ended, bounded by a deadline.
const { describe, test } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./helpers.js')
const { KINDS } = require('./platforms.js')

const clock = process.env.WXSESSION_CLOCK
if (clock !== 'ttl' && clock !== 'idle') throw new Error('set WXSESSION_CLOCK to ttl or idle')
const reason = clock === 'ttl' ? 'expired' : 'idle_timeout'

// performance.now(): the tests freeze Date.now (the phone's clock) while waiting.
async function waitEnded(id, within) {
  const deadline = performance.now() + within
  for (;;) {
    const st = await h.sessionState(id)
    if (st.state !== 'active') return st
    if (performance.now() > deadline) throw new Error('session still active after ' + within + ' ms: ' + JSON.stringify(st))
    await new Promise((r) => setTimeout(r, 100))
  }
}

for (const kind of KINDS) {
  describe(kind + ': ' + reason, () => {
    test('the server ends the session (' + reason + '): reported, one re-login, the request succeeds', async () => {
      const { dev, client } = h.device(kind)
      const events = []
      client.onSessionEnded((e) => events.push(e))
      await client.login()
      const id = client.session().session_id
      // The phone's clock stands still, so the client still believes in the session and sends it.
      const restore = h.frozenClock()
      try {
        assert.deepEqual(await waitEnded(id, 30 * 1000), { state: 'ended', reason })
        dev.calls.requests.length = 0
        const res = await client.request({ url: '/me' })
        assert.equal(res.statusCode, 200)
      } finally {
        restore()
      }
      assert.deepEqual(events, [{ reason }])
      assert.equal(dev.calls.login, 2)
      assert.deepEqual(
        dev.calls.requests.map((r) => r.method + ' ' + r.url.replace(h.apiURL, '')),
        ['GET /me', 'GET /session', 'POST /login', 'GET /me']
      )
    })

    if (clock === 'ttl') {
      test('with a true clock the client renews before the lifetime ends: no denied request', async () => {
        const { dev, client } = h.device(kind)
        await client.login()
        const id = client.session().session_id
        const lifetimeEnd = Date.now() + 3000
        while (Date.now() < lifetimeEnd) await new Promise((r) => setTimeout(r, 100))
        dev.calls.requests.length = 0
        assert.equal((await client.request({ url: '/me' })).statusCode, 200)
        assert.notEqual(client.session().session_id, id)
        assert.deepEqual(
          dev.calls.requests.map((r) => r.method + ' ' + r.url.replace(h.apiURL, '')),
          ['POST /login', 'GET /me']
        )
      })
    }
  })
}
