'use strict'
// Sessions an operator ends with wxadmin (docs/design.md §8): kicked → reported, one re-login;
// banned → reported, no wx.login until login(), which the server then refuses (user_banned).
// The Go harness builds cmd/wxadmin and sets WXSESSION_WXADMIN and WXSESSION_DYNAMODB_URL.
const { describe, test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { execFile } = require('node:child_process')
const h = require('./helpers.js')

function wxadmin(...args) {
  const bin = process.env.WXSESSION_WXADMIN
  const endpoint = process.env.WXSESSION_DYNAMODB_URL
  if (!bin || !endpoint) throw new Error('set WXSESSION_WXADMIN and WXSESSION_DYNAMODB_URL (the Go e2e test does)')
  return new Promise((resolve, reject) => {
    execFile(bin, ['-local', '-dynamodb-endpoint', endpoint, ...args], { env: Object.assign({}, process.env, { DYNAMODB_ENDPOINT: '' }) }, (err, stdout, stderr) => {
      // wxadmin prints its audit lines on stderr: the Go harness checks them with the run's.
      if (process.env.WXSESSION_WXADMIN_LOG) fs.appendFileSync(process.env.WXSESSION_WXADMIN_LOG, stderr)
      if (err) reject(new Error('wxadmin ' + args.join(' ') + ': ' + err.message + '\n' + stderr))
      else resolve(stdout)
    })
  })
}

module.exports = function defineAdmin(kind) {
  const device = (o) => h.device(kind, o)

  describe(kind + ': ended by an operator', () => {
    test('kicked: reported, one re-login, the request succeeds', async () => {
      const { dev, client } = device()
      const events = []
      client.onSessionEnded((e) => events.push(e))
      await client.login()
      await wxadmin('sessions', 'revoke', '-openid', dev.openid)
      assert.equal((await client.request({ url: '/me' })).statusCode, 200)
      assert.deepEqual(events, [{ reason: 'kicked' }])
      assert.equal(dev.calls.login, 2)
    })

    test('banned: reported, no re-login loop; login() is refused until the ban is lifted', async () => {
      const { dev, client } = device()
      const events = []
      client.onSessionEnded((e) => events.push(e))
      await client.login()
      await wxadmin('users', 'ban', '-openid', dev.openid, '-reason', 'client test')
      for (let i = 0; i < 3; i++) {
        await assert.rejects(client.request({ url: '/me' }), (e) => e.kind === 'session_ended' && e.reason === 'banned')
      }
      assert.deepEqual(events, [{ reason: 'banned' }])
      assert.equal(dev.calls.login, 1, 'no wx.login after banned')
      assert.equal(h.requestsTo(dev, /^GET .*\/session$/).length, 1)
      // An app restart does not log in either.
      const again = device({ openid: dev.openid, storage: dev.storage })
      await assert.rejects(again.client.request({ url: '/me' }), (e) => e.reason === 'banned')
      assert.equal(again.dev.calls.login, 0)
      // The app may try login() (say, from a "try again" button): the server refuses it.
      await assert.rejects(client.login(), (e) => {
        assert.equal(e.kind, 'login')
        assert.equal(e.statusCode, 403)
        assert.equal(e.code, 'user_banned')
        assert.equal(e.reason, 'banned')
        return true
      })
      await assert.rejects(client.request({ url: '/me' }), (e) => e.kind === 'session_ended' && e.reason === 'banned')
      assert.equal(dev.calls.login, 2)
      await wxadmin('users', 'unban', '-openid', dev.openid)
      await client.login()
      assert.equal((await client.request({ url: '/me' })).statusCode, 200)
    })
  })
}
