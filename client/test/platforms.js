'use strict'
// Simulated platform objects for the tests: native WeChat (`wx`), uni-app (`uni`) and Taro.
// Each does real HTTP (fetch) against the local stack and asks the WeChat emulator for real
// codes, and each keeps the calling conventions of its platform:
//  - wx:   callbacks only; request() returns a RequestTask, never a promise.
//  - uni:  callbacks when given (returns a task), otherwise a promise (uni-app's Vue 3 style);
//          responses carry `cookies`; getDeviceInfo as in uni-app 3.
//  - taro: every API returns a promise that also rejects on failure (so a client that ignores
//          it leaves an unhandled rejection, which fails the test run), and calls the
//          callbacks; no getDeviceInfo, only getSystemInfoSync (older Taro 3).
// Storage is an in-memory map per simulated device, JSON-copied like the real one; `device`
// shares one storage between clients (an app restart is a new client over the same storage).

const KINDS = ['wx', 'uni', 'taro']

function createDevice(opts) {
  const storage = opts.storage || new Map()
  const calls = { login: 0, requests: [] }
  const dev = {
    kind: opts.kind,
    storage,
    calls,
    openid: opts.openid,
    loginCode: null, // a fixed code to hand out instead of asking the emulator
    failLogin: false, // wx.login fails
    failStorage: null, // 'read' | 'write' | null
    failRequest: null, // (url, method) => boolean: wx.request fails without sending
    afterLogin: null // async (body) => void, run after a successful POST /login answer
  }

  function emulatorCode() {
    return fetch(opts.wechatURL.replace(/\/+$/, '') + '/test/codes', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(dev.openid ? { openid: dev.openid } : {})
    })
      .then((r) => r.json())
      .then((b) => {
        if (!dev.openid) dev.openid = b.openid
        return b.code
      })
  }

  // The platform operations, as (params) => Promise<result>.
  const ops = {
    login() {
      calls.login++
      if (dev.failLogin) return Promise.reject({ errMsg: 'login:fail simulated' })
      if (dev.loginCode) return Promise.resolve({ code: dev.loginCode, errMsg: 'login:ok' })
      return emulatorCode().then(
        (code) => ({ code, errMsg: 'login:ok' }),
        (e) => Promise.reject({ errMsg: 'login:fail ' + e.message })
      )
    },
    async request(p) {
      let url = p.url
      const method = (p.method || 'GET').toUpperCase()
      const header = Object.assign({}, p.header || {})
      calls.requests.push({ method, url, auth: header.Authorization || header.authorization || '', data: p.data })
      if (dev.failRequest && dev.failRequest(url, method)) throw { errMsg: 'request:fail simulated' }
      let body
      if (method === 'GET' && p.data && typeof p.data === 'object') {
        const q = new URLSearchParams(p.data).toString()
        if (q) url += (url.includes('?') ? '&' : '?') + q
      } else if (p.data !== undefined) {
        body = typeof p.data === 'string' ? p.data : JSON.stringify(p.data)
        if (!Object.keys(header).some((k) => k.toLowerCase() === 'content-type')) header['content-type'] = 'application/json'
      }
      let r
      try {
        r = await fetch(url, { method, headers: header, body, redirect: 'manual' })
      } catch (e) {
        throw { errMsg: 'request:fail ' + e.message }
      }
      const text = await r.text()
      let data = text
      try {
        data = JSON.parse(text)
      } catch (e) {
        /* like wx with dataType json: a body that is not JSON stays a string */
      }
      const h = {}
      r.headers.forEach((v, k) => {
        h[k === 'retry-after' ? 'Retry-After' : k] = v
      })
      if (method === 'POST' && /\/login$/.test(url) && r.status === 200) {
        if (opts.onSession) opts.onSession(data && data.session_id)
        if (dev.afterLogin) await dev.afterLogin(data)
      }
      const res = { statusCode: r.status, data, header: h, errMsg: 'request:ok' }
      if (opts.kind === 'uni' || opts.kind === 'taro') res.cookies = []
      return res
    }
  }

  function storageOp(op, fn) {
    if (dev.failStorage === op) throw new Error(op === 'read' ? 'getStorageSync:fail simulated' : 'setStorageSync:fail exceed storage max size 10MB')
    return fn()
  }
  const syncAPI = {
    getStorageSync(k) {
      return storageOp('read', () => (storage.has(k) ? JSON.parse(storage.get(k)) : ''))
    },
    setStorageSync(k, v) {
      storageOp('write', () => storage.set(k, JSON.stringify(v)))
    },
    removeStorageSync(k) {
      storageOp('write', () => storage.delete(k))
    }
  }
  const info = { platform: 'ios', brand: 'Apple', model: 'iPhone 15 Pro<iPhone16,1>', system: 'iOS 17.4.1' }

  // Adapters with each platform's calling convention.
  function callbackStyle(op) {
    return function (params) {
      params = params || {}
      ops[op](params).then(
        (r) => {
          if (params.success) params.success(r)
          if (params.complete) params.complete(r)
        },
        (e) => {
          if (params.fail) params.fail(e)
          if (params.complete) params.complete(e)
        }
      )
      return { abort() {}, onHeadersReceived() {} }
    }
  }
  function uniStyle(op) {
    const cb = callbackStyle(op)
    return function (params) {
      params = params || {}
      if (params.success || params.fail || params.complete) return cb(params)
      return ops[op](params) // Vue 3 uni-app: a promise when no callback is given
    }
  }
  function taroStyle(op) {
    return function (params) {
      params = params || {}
      // Like Taro's promisified APIs: callbacks and a promise that rejects on failure, so a
      // caller that ignores the promise leaves an unhandled rejection.
      return new Promise((resolve, reject) => {
        ops[op](params).then(
          (r) => {
            if (params.success) params.success(r)
            resolve(r)
          },
          (e) => {
            if (params.fail) params.fail(e)
            reject(e)
          }
        )
      })
    }
  }
  const style = { wx: callbackStyle, uni: uniStyle, taro: taroStyle }[opts.kind]
  if (!style) throw new Error('unknown platform kind ' + opts.kind)
  const api = Object.assign({ login: style('login'), request: style('request') }, syncAPI)
  if (opts.kind === 'taro') api.getSystemInfoSync = () => Object.assign({ windowWidth: 390 }, info)
  else api.getDeviceInfo = () => Object.assign({ benchmarkLevel: 1 }, info)
  dev.api = api
  return dev
}

module.exports = { createDevice, KINDS }
