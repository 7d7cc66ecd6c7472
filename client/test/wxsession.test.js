'use strict'
// Tests of client/wxsession.js against the real local stack (started by the Go e2e test,
// which passes WXSESSION_API_URL and WXSESSION_WECHAT_URL). Run them with `make test`.
const test = require('node:test')
const assert = require('node:assert/strict')
const { createClient } = require('../wxsession.js')
const { createWx } = require('./fakewx.js')

const apiURL = process.env.WXSESSION_API_URL
const wechatURL = process.env.WXSESSION_WECHAT_URL
if (!apiURL || !wechatURL) {
  throw new Error('set WXSESSION_API_URL and WXSESSION_WECHAT_URL (make test starts the local stack and does)')
}

function device(openid) {
  const wx = createWx({ wechatURL, openid })
  const client = createClient({ baseURL: apiURL, wx })
  return { wx, client }
}

async function rawMe(sessionID) {
  const r = await fetch(apiURL + '/me', { headers: { authorization: 'Bearer ' + sessionID } })
  return r.status
}

test('request logs in first, stores the session and sends it as a Bearer token', async () => {
  const { wx, client } = device()
  const res = await client.request({ url: '/me' })
  assert.equal(res.statusCode, 200)
  assert.equal(res.data.openid, wx.openid)
  assert.equal(wx.calls.login, 1)
  const s = client.session()
  assert.ok(s && s.session_id.length === 43, 'session stored')
  assert.equal(s.openid, wx.openid)
  // The next request reuses the stored session: no second wx.login.
  const again = await client.request({ url: '/me' })
  assert.equal(again.statusCode, 200)
  assert.equal(wx.calls.login, 1)
})

test('concurrent callers share one wx.login and one POST /login', async () => {
  const { wx, client } = device()
  const results = await Promise.all(Array.from({ length: 8 }, () => client.request({ url: '/me' })))
  for (const r of results) assert.equal(r.statusCode, 200)
  assert.equal(wx.calls.login, 1)
  assert.equal(wx.calls.urls.filter((u) => u.endsWith('/login')).length, 1)
  const [a, b] = await Promise.all([client.login(), client.login()])
  assert.equal(a.session_id, b.session_id, 'two concurrent login() calls share one session')
  assert.equal(wx.calls.login, 2)
})

test('a 403 drops the session, logs in again and retries exactly once', async () => {
  const { wx, client } = device()
  await client.login()
  const stale = client.session().session_id
  await client.logout() // the server forgets the session ...
  wx.setStorageSync('wxsession', { session_id: stale, openid: wx.openid }) // ... the device still has it
  const res = await client.request({ url: '/me/profile' })
  assert.equal(res.statusCode, 200)
  assert.notEqual(client.session().session_id, stale)
  assert.equal(wx.calls.login, 2)
})

test('no loop: a retry that is denied again resolves with that status', async () => {
  const { wx, client } = device()
  await client.login()
  const stale = client.session().session_id
  await client.logout()
  wx.setStorageSync('wxsession', { session_id: stale, openid: wx.openid })
  // Every new session is revoked right after login (another device logs out everywhere).
  wx.afterLogin = async (body) => {
    await fetch(apiURL + '/logout?scope=all', { method: 'POST', headers: { authorization: 'Bearer ' + body.session_id } })
  }
  const before = wx.calls.request
  const res = await client.request({ url: '/me' })
  assert.equal(res.statusCode, 403)
  assert.equal(wx.calls.request - before, 3, 'request, login, one retry')
  assert.equal(wx.calls.login, 2)
})

test('an expired stored session is not sent', async () => {
  const { wx, client } = device()
  wx.setStorageSync('wxsession', { session_id: 'A'.repeat(43), expires_at: '2000-01-01T00:00:00Z' })
  const res = await client.request({ url: '/me' })
  assert.equal(res.statusCode, 200)
  assert.equal(wx.calls.login, 1)
  assert.equal(wx.calls.request, 2, 'login + request, no denied attempt')
})

test('request data, method and headers pass through; PUT then GET the profile', async () => {
  const { client } = device()
  const put = await client.request({ url: '/me/profile', method: 'PUT', data: { nickname: '小明', avatar_url: 'https://example.com/a.png' } })
  assert.equal(put.statusCode, 200)
  const got = await client.request({ url: '/me/profile' })
  assert.equal(got.statusCode, 200)
  assert.equal(got.data.nickname, '小明')
  const bad = await client.request({ url: '/me/profile', method: 'PUT', data: '{not json' })
  assert.equal(bad.statusCode, 400, 'a 4xx other than 401/403 resolves as is')
})

test('logout ends the session on the server and clears storage', async () => {
  const { client } = device()
  await client.login()
  const id = client.session().session_id
  assert.equal(await rawMe(id), 200)
  const res = await client.logout()
  assert.equal(res.statusCode, 204)
  assert.equal(client.session(), null)
  assert.equal(await rawMe(id), 403)
})

test('logout({ all: true }) ends the sessions of every device of the user', async () => {
  const phone = device()
  await phone.client.login()
  const tablet = device(phone.wx.openid)
  await tablet.client.login()
  const tabletID = tablet.client.session().session_id
  assert.notEqual(tabletID, phone.client.session().session_id)
  assert.equal(await rawMe(tabletID), 200)
  const res = await phone.client.logout({ all: true })
  assert.equal(res.statusCode, 204)
  assert.equal(await rawMe(tabletID), 403)
})

test('login refused by WeChat rejects with the server error code', async () => {
  const { wx, client } = device()
  wx.loginCode = 'thiscodewasneverissuedbywechat00'
  await assert.rejects(client.request({ url: '/me' }), (err) => {
    assert.equal(err.kind, 'login')
    assert.equal(err.statusCode, 401)
    assert.equal(err.code, 'invalid_code')
    return true
  })
  assert.equal(client.session(), null)
})

test('wx.login failure and network failure reject', async () => {
  const { wx, client } = device()
  wx.failLogin = true
  await assert.rejects(client.request({ url: '/me' }), (err) => err.kind === 'wx_login')
  const off = createClient({ baseURL: 'http://127.0.0.1:9', wx: createWx({ wechatURL }) })
  await assert.rejects(off.request({ url: '/me' }), (err) => err.kind === 'network')
})

test('createClient validates its options', () => {
  assert.throws(() => createClient({}), /baseURL/)
})
