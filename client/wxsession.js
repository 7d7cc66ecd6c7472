/**
 * wxsession mini-program client.
 *
 * One dependency-free CommonJS file: copy it into your mini-program (e.g. utils/wxsession.js)
 * and `require` it. It logs in with wx.login() + POST /login, keeps the session in
 * wx storage, sends it as `Authorization: Bearer <session_id>` and, when the gateway answers
 * 401 or 403 (session expired, logged out elsewhere, or deleted), logs in again and retries
 * the request exactly once.
 *
 *   const { createClient } = require('./utils/wxsession.js')
 *   const api = createClient({ baseURL: 'https://xxxx.execute-api.ap-east-1.amazonaws.com' })
 *   const res = await api.request({ url: '/me' })   // -> { statusCode, data, header }
 *
 * Promises resolve with `{ statusCode, data, header }` for every HTTP status; they reject only
 * when the network request or wx.login itself fails, or when login is refused (the error then
 * carries `statusCode` and the server's `code`).
 */
'use strict'

var DEFAULT_STORAGE_KEY = 'wxsession'

/**
 * WxSessionError is what the client rejects with.
 * kind: 'wx_login' (wx.login failed), 'network' (wx.request failed), 'login' (POST /login
 * answered an error; statusCode and code are set).
 */
function WxSessionError(kind, message, extra) {
  var err = new Error(message)
  err.name = 'WxSessionError'
  err.kind = kind
  if (extra) {
    for (var k in extra) {
      if (Object.prototype.hasOwnProperty.call(extra, k)) err[k] = extra[k]
    }
  }
  return err
}

function joinURL(base, path) {
  if (/^https?:\/\//i.test(path)) return path
  return base.replace(/\/+$/, '') + '/' + String(path || '').replace(/^\/+/, '')
}

function hasHeader(header, name) {
  var lower = name.toLowerCase()
  for (var k in header) {
    if (Object.prototype.hasOwnProperty.call(header, k) && k.toLowerCase() === lower) return true
  }
  return false
}

/**
 * createClient({ baseURL, storageKey?, wx? }) returns { login, request, logout, session }.
 * `wx` defaults to the mini-program's global wx object; tests pass a simulated one.
 */
function createClient(options) {
  options = options || {}
  if (!options.baseURL || typeof options.baseURL !== 'string') {
    throw new TypeError('wxsession: createClient needs a baseURL')
  }
  var baseURL = options.baseURL
  var storageKey = options.storageKey || DEFAULT_STORAGE_KEY
  /* global wx */
  var w = options.wx || (typeof wx !== 'undefined' ? wx : null)
  if (!w) throw new TypeError('wxsession: no wx object (pass options.wx outside a mini-program)')

  var inflight = null // the one login in progress, shared by every caller

  function now() {
    return Date.now()
  }

  function readSession() {
    var s
    try {
      s = w.getStorageSync(storageKey)
    } catch (e) {
      return null
    }
    if (!s || typeof s !== 'object' || typeof s.session_id !== 'string' || !s.session_id) return null
    if (s.expires_at && Date.parse(s.expires_at) <= now()) return null
    return s
  }

  function writeSession(s) {
    try {
      w.setStorageSync(storageKey, s)
    } catch (e) {
      /* storage full or unavailable: the session still lives in memory for this call */
    }
  }

  function clearSession(onlyIf) {
    if (onlyIf) {
      var cur = readSession()
      // A concurrent login may already have stored a newer session: keep it.
      if (cur && cur.session_id !== onlyIf) return
    }
    try {
      w.removeStorageSync(storageKey)
    } catch (e) {
      /* ignore */
    }
  }

  function rawRequest(opts) {
    return new Promise(function (resolve, reject) {
      w.request({
        url: joinURL(baseURL, opts.url),
        method: opts.method || 'GET',
        data: opts.data,
        header: opts.header || {},
        dataType: opts.dataType,
        responseType: opts.responseType,
        timeout: opts.timeout,
        success: function (res) {
          resolve({ statusCode: res.statusCode, data: res.data, header: res.header || {} })
        },
        fail: function (err) {
          reject(WxSessionError('network', 'wxsession: request failed: ' + ((err && err.errMsg) || 'unknown error'), { cause: err }))
        }
      })
    })
  }

  function wxLogin() {
    return new Promise(function (resolve, reject) {
      w.login({
        success: function (res) {
          if (res && res.code) resolve(res.code)
          else reject(WxSessionError('wx_login', 'wxsession: wx.login returned no code', { cause: res }))
        },
        fail: function (err) {
          reject(WxSessionError('wx_login', 'wxsession: wx.login failed: ' + ((err && err.errMsg) || 'unknown error'), { cause: err }))
        }
      })
    })
  }

  /** login() always starts a new session; concurrent callers share one wx.login + POST /login. */
  function login() {
    if (inflight) return inflight
    inflight = wxLogin()
      .then(function (code) {
        return rawRequest({ url: '/login', method: 'POST', data: { code: code }, header: { 'content-type': 'application/json' } })
      })
      .then(function (res) {
        var body = res.data
        if (typeof body === 'string') {
          try {
            body = JSON.parse(body)
          } catch (e) {
            /* leave as is */
          }
        }
        if (res.statusCode !== 200 || !body || typeof body.session_id !== 'string') {
          throw WxSessionError('login', 'wxsession: login refused (' + res.statusCode + (body && body.error ? ' ' + body.error : '') + ')', {
            statusCode: res.statusCode,
            code: body && body.error,
            retryAfter: res.header && (res.header['Retry-After'] || res.header['retry-after'])
          })
        }
        var s = { session_id: body.session_id, expires_at: body.expires_at, openid: body.openid }
        writeSession(s)
        return s
      })
    var done = function () {
      inflight = null
    }
    inflight.then(done, done)
    return inflight
  }

  function ensureSession() {
    var s = readSession()
    if (s) return Promise.resolve(s)
    return login()
  }

  function send(opts, s) {
    var header = {}
    var src = opts.header || {}
    for (var k in src) {
      if (Object.prototype.hasOwnProperty.call(src, k)) header[k] = src[k]
    }
    if (!hasHeader(header, 'authorization')) header.Authorization = 'Bearer ' + s.session_id
    var o = {}
    for (var j in opts) {
      if (Object.prototype.hasOwnProperty.call(opts, j)) o[j] = opts[j]
    }
    o.header = header
    return rawRequest(o)
  }

  /**
   * request(options) sends a wx.request-style request with the session. On 401/403 it
   * drops the session, logs in again and retries once; the retry's answer is final.
   */
  function request(opts) {
    opts = opts || {}
    return ensureSession().then(function (s) {
      return send(opts, s).then(function (res) {
        if (res.statusCode !== 401 && res.statusCode !== 403) return res
        clearSession(s.session_id)
        return login().then(function (fresh) {
          return send(opts, fresh)
        })
      })
    })
  }

  /** logout({ all }) ends this session (or every session of the user) and clears storage. */
  function logout(o) {
    var all = !!(o && o.all)
    var s = readSession()
    if (!s) {
      clearSession()
      return Promise.resolve({ statusCode: 204 })
    }
    var url = all ? '/logout?scope=all' : '/logout'
    return send({ url: url, method: 'POST' }, s).then(
      function (res) {
        clearSession()
        return { statusCode: res.statusCode }
      },
      function (err) {
        clearSession()
        throw err
      }
    )
  }

  /** session() returns the stored session ({ session_id, expires_at, openid }) or null. */
  function session() {
    return readSession()
  }

  return { login: login, request: request, logout: logout, session: session }
}

module.exports = { createClient: createClient, WxSessionError: WxSessionError }
