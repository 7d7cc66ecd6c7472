'use strict'
// A simulated `wx` object for tests: wx.login asks the WeChat emulator for a real code
// (POST /test/codes), wx.request does real HTTP with fetch and behaves like the
// mini-program's (success for every HTTP status, JSON bodies parsed, no cookie jar), and
// storage is an in-memory map per simulated device.

function createWx(opts) {
  opts = opts || {}
  const storage = new Map()
  const calls = { login: 0, request: 0, urls: [] }
  const wx = {
    calls,
    openid: opts.openid,
    loginCode: opts.loginCode, // fixed code to hand out instead of asking the emulator
    failLogin: false,
    afterLogin: null, // async hook run after each successful POST /login
    login({ success, fail }) {
      calls.login++
      if (wx.failLogin) {
        setImmediate(() => fail({ errMsg: 'login:fail simulated' }))
        return
      }
      if (wx.loginCode) {
        setImmediate(() => success({ code: wx.loginCode, errMsg: 'login:ok' }))
        return
      }
      fetch(opts.wechatURL.replace(/\/+$/, '') + '/test/codes', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(wx.openid ? { openid: wx.openid } : {})
      })
        .then((r) => r.json())
        .then((b) => {
          if (!wx.openid) wx.openid = b.openid
          success({ code: b.code, errMsg: 'login:ok' })
        })
        .catch((e) => fail({ errMsg: 'login:fail ' + e.message }))
    },
    request({ url, method = 'GET', data, header = {}, success, fail }) {
      calls.request++
      calls.urls.push(method + ' ' + url)
      let body
      const headers = Object.assign({}, header)
      const hasCT = Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')
      if (method === 'GET' && data && typeof data === 'object') {
        const q = new URLSearchParams(data).toString()
        if (q) url += (url.includes('?') ? '&' : '?') + q
      } else if (data !== undefined) {
        body = typeof data === 'string' ? data : JSON.stringify(data)
        if (!hasCT) headers['content-type'] = 'application/json'
      }
      fetch(url, { method, headers, body })
        .then(async (r) => {
          const text = await r.text()
          let parsed = text
          try {
            parsed = JSON.parse(text)
          } catch (e) {
            /* wx leaves non-JSON bodies as strings */
          }
          const h = {}
          r.headers.forEach((v, k) => {
            h[k] = v
          })
          if (wx.afterLogin && method === 'POST' && /\/login$/.test(url) && r.status === 200) {
            await wx.afterLogin(parsed)
          }
          success({ statusCode: r.status, data: parsed, header: h, errMsg: 'request:ok' })
        })
        .catch((e) => fail({ errMsg: 'request:fail ' + e.message }))
    },
    getStorageSync(k) {
      return storage.has(k) ? JSON.parse(storage.get(k)) : ''
    },
    setStorageSync(k, v) {
      storage.set(k, JSON.stringify(v))
    },
    removeStorageSync(k) {
      storage.delete(k)
    }
  }
  return wx
}

module.exports = { createWx }
