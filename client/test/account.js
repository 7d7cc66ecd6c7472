'use strict'
// Account deletion (docs/design.md §9): DELETE /me ends every session with account_deleted; the
// client reports it and stops logging in until the app calls login().
const { describe, test } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./helpers.js')

module.exports = function defineAccount(kind) {
  const device = (o) => h.device(kind, o)

  describe(kind + ': account deletion', () => {
    test('account_deleted: reported, no re-login until login() is called', async () => {
      const { dev, client } = device()
      const events = []
      client.onSessionEnded((e) => events.push(e))
      await client.login()
      const other = await h.rawLogin(dev.openid)
      assert.equal((await h.raw('DELETE', '/me', { id: other.session_id })).status, 204)
      await assert.rejects(client.request({ url: '/me' }), (e) => e.kind === 'session_ended' && e.reason === 'account_deleted')
      assert.deepEqual(events, [{ reason: 'account_deleted' }])
      const before = dev.calls.requests.length
      await assert.rejects(client.request({ url: '/me' }), (e) => e.kind === 'session_ended' && e.reason === 'account_deleted')
      assert.equal(dev.calls.requests.length, before, 'nothing sent')
      // An app restart remembers it too.
      const again = device({ openid: dev.openid, storage: dev.storage })
      await assert.rejects(again.client.request({ url: '/me' }), (e) => e.reason === 'account_deleted')
      assert.equal(dev.calls.login + again.dev.calls.login, 1)
      // login() starts over (a new account).
      await client.login()
      assert.equal((await client.request({ url: '/me' })).statusCode, 200)
    })

    test('deleteAccount() deletes the user; the client stays logged out until login()', async () => {
      const { dev, client } = device()
      const tablet = device()
      await client.login()
      tablet.dev.openid = dev.openid
      await tablet.client.login()
      await client.request({ url: '/me/profile', method: 'PUT', data: { nickname: 'gone' } })
      await client.deleteAccount()
      await assert.rejects(client.request({ url: '/me' }), (e) => e.kind === 'session_ended' && e.reason === 'account_deleted')
      const events = []
      tablet.client.onSessionEnded((e) => events.push(e))
      await assert.rejects(tablet.client.request({ url: '/me' }), (e) => e.reason === 'account_deleted')
      assert.deepEqual(events, [{ reason: 'account_deleted' }])
      await client.login()
      const fresh = await client.request({ url: '/me/profile' })
      assert.equal(fresh.statusCode, 200)
      assert.notEqual(fresh.data.nickname, 'gone', 'the profile went with the account')
    })
  })
}
