'use strict'
// bindPhoneNumber (docs/design.md §9): the getPhoneNumber button's code through POST /me/phone;
// the legacy encryptedData path only after GET /me/session-key, and never a wx.login.
const { describe, test } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./helpers.js')

function paths(dev) {
  return dev.calls.requests.map((r) => r.method + ' ' + r.url.replace(h.apiURL, ''))
}

module.exports = function definePhone(kind) {
  const device = (o) => h.device(kind, o)

  describe(kind + ': phone numbers', () => {
    const mainland = h.phoneNumber('138')
    const abroad = h.phoneNumber('202').slice(0, 10)
    const cases = [
      { name: 'a mainland number', input: { phone_number: mainland }, want: { phone_number: mainland, pure_phone_number: mainland, country_code: '86' } },
      { name: 'a number abroad', input: { phone_number: abroad, country_code: '1' }, want: { phone_number: '+1 ' + abroad, pure_phone_number: abroad, country_code: '1' } }
    ]
    for (const c of cases) {
      test('the button’s code binds ' + c.name, async () => {
        const { dev, client } = device()
        await client.login()
        const { code } = await h.emulator('POST', '/test/phone-codes', Object.assign({ openid: dev.openid }, c.input))
        const got = await client.bindPhoneNumber({ type: 'getphonenumber', detail: { errMsg: 'getPhoneNumber:ok', code } })
        assert.deepEqual(got, c.want)
        const me = await client.request({ url: '/me/phone' })
        assert.equal(me.statusCode, 200)
        assert.equal(me.data.pure_phone_number, c.want.pure_phone_number)
        assert.deepEqual(paths(dev), ['POST /login', 'POST /me/phone', 'GET /me/phone'])
      })
    }

    test('a refusal by the user or a bad code rejects with a typed error', async () => {
      const { dev, client } = device()
      await client.login()
      await assert.rejects(client.bindPhoneNumber({ detail: { errMsg: 'getPhoneNumber:fail user deny' } }), (e) => e.kind === 'phone' && e.code === 'user_denied')
      await assert.rejects(client.bindPhoneNumber({ detail: { errMsg: 'getPhoneNumber:ok' } }), (e) => e.kind === 'phone' && e.code === 'no_code')
      assert.deepEqual(paths(dev), ['POST /login'], 'nothing sent')
      await assert.rejects(client.bindPhoneNumber({ detail: { errMsg: 'getPhoneNumber:ok', code: 'neverissuedphonecode0000000000000' } }), (e) => {
        assert.equal(e.kind, 'http')
        assert.equal(e.statusCode, 400)
        assert.equal(e.code, 'invalid_code')
        return true
      })
    })

    test('old base libraries: encryptedData after GET /me/session-key, without wx.login', async () => {
      const { dev, client } = device()
      await client.login()
      const number = h.phoneNumber('139')
      const enc = await h.emulator('POST', '/test/encrypted-data', {
        openid: dev.openid,
        data: { phoneNumber: number, purePhoneNumber: number, countryCode: '86' }
      })
      const got = await client.bindPhoneNumber({ detail: { errMsg: 'getPhoneNumber:ok', encryptedData: enc.encryptedData, iv: enc.iv } })
      assert.equal(got.pure_phone_number, number)
      assert.equal(dev.calls.login, 1)
      assert.deepEqual(paths(dev), ['POST /login', 'GET /me/session-key', 'POST /me/phone'])
    })

    test('old base libraries: no session, or an ended one, rejects without wx.login', async () => {
      const event = { detail: { errMsg: 'getPhoneNumber:ok', encryptedData: 'AAAA', iv: 'AAAAAAAAAAAAAAAAAAAAAA==' } }
      const fresh = device()
      await assert.rejects(fresh.client.bindPhoneNumber(event), (e) => e.kind === 'phone' && e.code === 'session_key_stale')
      assert.equal(fresh.dev.calls.login, 0)
      assert.equal(fresh.dev.calls.requests.length, 0)
      const { dev, client } = device()
      await client.login()
      await h.raw('POST', '/logout', { id: client.session().session_id })
      await assert.rejects(client.bindPhoneNumber(event), (e) => e.kind === 'session_ended' && e.reason === 'logged_out')
      assert.equal(dev.calls.login, 1)
      assert.deepEqual(paths(dev), ['POST /login', 'GET /me/session-key', 'GET /session'])
    })
  })
}
