/**
 * wxsession — the mini-program client of the wxsession backend.
 *
 * One CommonJS file, no dependencies, the same API over native WeChat (`wx`), uni-app (`uni`)
 * and Taro. It logs in with wx.login() + POST /login, keeps the session in the platform's
 * storage, sends it as `Authorization: Bearer <session_id>` to the API's origin only, and
 * when the API answers 401/403 asks GET /session why, reports the reason and logs in again
 * (at most once per request; never after `banned` or `account_deleted`).
 *
 *   const { createClient } = require('wxsession')
 *   const api = createClient({ baseURL: 'https://abc123.execute-api.ap-east-1.amazonaws.com' })
 *   const res = await api.request({ url: '/me' })   // -> { statusCode, data, header }
 *
 * The design and its reasons: docs/design.md §9 of the wxsession repository.
 */
'use strict'

var VERSION = '2.0.0'
var DEFAULT_STORAGE_KEY = 'wxsession'

// Reasons after which the client does not log in again by itself (docs/design.md §9).
var FINAL_REASONS = { banned: true, account_deleted: true }
// Client-side wx.login budget: WeChat allows code2Session 100 times per user per minute;
// a client that needs more than this is looping, and stops (kind 'throttled').
var LOGIN_WINDOW_MS = 60 * 1000
var LOGINS_PER_WINDOW = 10
// A wx.login code works once within 5 minutes; one whose POST /login got no answer is
// posted again (the server answers a repeated code with the same session) while younger
// than this.
var CODE_REUSE_MS = 4 * 60 * 1000
// A session is renewed this long before the end of its lifetime (at most a tenth of it).
var RENEW_MARGIN_MS = 60 * 1000
var DEVICE_ID_RE = /^[A-Za-z0-9_-]{16,64}$/
var DEVICE_FIELDS = ['platform', 'brand', 'model', 'system']

/**
 * WxSessionError is what the client rejects with. `kind` says what failed:
 *  - 'network'        wx.request failed (no HTTP answer); `cause` is the platform's error
 *  - 'wx_login'       wx.login failed or returned no code
 *  - 'login'          POST /login answered an error: `statusCode`, `code` (e.g. 'invalid_code',
 *                     'rate_limited', 'user_banned'), `retryAfter` (s), `until` (ban end)
 *  - 'throttled'      the client refused to call wx.login: too many in a minute, or the server's
 *                     Retry-After has not passed; `retryAfter` (s)
 *  - 'storage'        the platform's storage threw; `cause`
 *  - 'session_ended'  the session ended and the client will not log in by itself: `reason`
 *  - 'session_check'  GET /session answered neither 200 nor 401: `statusCode`
 *  - 'http'           a helper's route (sessions, endSession, bindPhoneNumber, deleteAccount)
 *                     answered an error: `statusCode`, `code`
 *  - 'phone'          bindPhoneNumber could not start: `code` is 'user_denied', 'no_code'
 *                     or 'session_key_stale'
 */
function WxSessionError(kind, message, props) {
  if (!(this instanceof WxSessionError)) return new WxSessionError(kind, message, props)
  this.name = 'WxSessionError'
  this.message = message
  this.kind = kind
  if (props) {
    for (var k in props) {
      if (hasOwn(props, k) && props[k] !== undefined) this[k] = props[k]
    }
  }
  if (typeof Error.captureStackTrace === 'function') Error.captureStackTrace(this, WxSessionError)
  else this.stack = new Error(message).stack
}
WxSessionError.prototype = Object.create(Error.prototype)
WxSessionError.prototype.constructor = WxSessionError

function hasOwn(o, k) {
  return Object.prototype.hasOwnProperty.call(o, k)
}

function errMsg(e) {
  if (!e) return 'unknown error'
  return String(e.errMsg || e.message || e)
}

function getHeader(header, name) {
  if (!header) return undefined
  var lower = name.toLowerCase()
  for (var k in header) {
    if (hasOwn(header, k) && k.toLowerCase() === lower) return header[k]
  }
  return undefined
}

function parseBody(data) {
  if (typeof data !== 'string') return data
  try {
    return JSON.parse(data)
  } catch (e) {
    return data
  }
}

function errorCode(data) {
  var b = parseBody(data)
  return b && typeof b === 'object' && typeof b.error === 'string' ? b.error : undefined
}

function retryAfterSeconds(header) {
  var v = getHeader(header, 'retry-after')
  var n = parseInt(v, 10)
  return isFinite(n) && n >= 0 ? n : undefined
}

/** origin returns "scheme://authority" of an absolute http(s) URL (default port removed), or ''. */
function origin(url) {
  var m = /^(https?):\/\/([^/?#]*)/i.exec(url)
  if (!m) return ''
  var scheme = m[1].toLowerCase()
  var host = m[2].toLowerCase()
  if ((scheme === 'https' && /:443$/.test(host)) || (scheme === 'http' && /:80$/.test(host))) {
    host = host.replace(/:\d+$/, '')
  }
  return scheme + '://' + host
}

function isAbsolute(url) {
  return /^[a-z][a-z0-9+.-]*:/i.test(url) || url.indexOf('//') === 0
}

/** detectPlatform finds the platform API object: uni-app's uni, then WeChat's wx, then Taro. */
function detectPlatform(p) {
  /* global uni, wx, Taro */
  var g = {
    uni: typeof uni !== 'undefined' ? uni : undefined,
    wx: typeof wx !== 'undefined' ? wx : undefined,
    taro: typeof Taro !== 'undefined' ? Taro : undefined
  }
  if (p && typeof p === 'object') return p
  if (typeof p === 'string') {
    if (!hasOwn(g, p)) throw new TypeError("wxsession: platform must be 'wx', 'uni', 'taro' or the platform's API object")
    if (!g[p]) {
      throw new TypeError('wxsession: platform ' + p + ' is not available here' + (p === 'taro' ? " (pass Taro itself: platform: Taro, from '@tarojs/taro')" : ''))
    }
    return g[p]
  }
  if (p !== undefined && p !== null) throw new TypeError('wxsession: platform must be a string or an object')
  var found = g.uni || g.wx || g.taro
  if (!found) throw new TypeError('wxsession: no uni, wx or Taro object found: pass options.platform')
  return found
}

/**
 * invoke calls a callback-style platform API (wx.request, uni.login, Taro.request …) and
 * returns a Promise. Callbacks are always passed, so wx and uni behave alike; a platform that
 * also returns a promise (Taro) has it observed, so its rejections are never unhandled.
 */
function invoke(api, name, params) {
  return new Promise(function (resolve, reject) {
    var settled = false
    function ok(r) {
      if (!settled) {
        settled = true
        resolve(r)
      }
    }
    function fail(e) {
      if (!settled) {
        settled = true
        reject(e || { errMsg: name + ':fail' })
      }
    }
    params.success = ok
    params.fail = fail
    var ret
    try {
      ret = api[name](params)
    } catch (e) {
      fail({ errMsg: name + ':fail ' + errMsg(e) })
      return
    }
    if (ret && typeof ret.then === 'function') ret.then(ok, fail)
  })
}

/** randomDeviceId makes a device id: 32 characters of [A-Za-z0-9]. It names a device, it is no secret. */
function randomDeviceId() {
  var alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
  var s = ''
  while (s.length < 32) s += alphabet.charAt(Math.floor(Math.random() * alphabet.length))
  return s
}

/**
 * createClient({ baseURL, platform?, storageKey? }) returns the client (see index.d.ts).
 * platform: 'wx' | 'uni' | 'taro' | the platform's API object; detected when absent.
 */
function createClient(options) {
  options = options || {}
  var baseURL = options.baseURL
  if (typeof baseURL !== 'string' || !origin(baseURL)) {
    throw new TypeError('wxsession: createClient needs baseURL, an http(s) URL such as https://api.example.com')
  }
  baseURL = baseURL.replace(/\/+$/, '')
  var apiOrigin = origin(baseURL)
  var api = detectPlatform(options.platform)
  if (typeof api.request !== 'function' || typeof api.login !== 'function' || typeof api.getStorageSync !== 'function') {
    throw new TypeError('wxsession: the platform object lacks request, login or getStorageSync')
  }
  var storageKey = options.storageKey || DEFAULT_STORAGE_KEY
  var deviceKey = storageKey + '.device_id'

  // The stored state: undefined until read; then null or
  // { session_id, openid, expires_at, deadline (ms, this device's clock), lifetime (ms) } and/or
  // { ended: reason } after banned / account_deleted.
  var state
  var deviceId // cached device_id
  var inflight = null // the one login in progress
  var checks = {} // session id -> in-flight GET /session
  var listeners = []
  var reported = [] // session ids whose end was reported (onSessionEnded once per session)
  var loginTimes = [] // wx.login calls within the last LOGIN_WINDOW_MS
  var notBefore = 0 // no wx.login before this (server's Retry-After)
  var pendingCode = null // { code, at }: a code whose POST /login got no answer
  var currentSid = null // the stored hash of this session, when sessions() has seen it

  function storageError(op, e) {
    return new WxSessionError('storage', 'wxsession: storage ' + op + ' failed: ' + errMsg(e), { cause: e })
  }

  function load() {
    if (state !== undefined) return state
    var s
    try {
      s = api.getStorageSync(storageKey)
    } catch (e) {
      throw storageError('read', e)
    }
    s = parseBody(s)
    if (!s || typeof s !== 'object') s = null
    else if (typeof s.ended === 'string') s = { ended: s.ended }
    else if (typeof s.session_id !== 'string' || !s.session_id || typeof s.deadline !== 'number') s = null
    state = s
    return state
  }

  function save(s) {
    state = s
    try {
      if (s) api.setStorageSync(storageKey, s)
      else api.removeStorageSync(storageKey)
    } catch (e) {
      throw storageError('write', e)
    }
  }

  function live(s) {
    if (!s || !s.session_id) return false
    var margin = Math.min(RENEW_MARGIN_MS, (s.lifetime || 0) / 10)
    return Date.now() < s.deadline - margin
  }

  function getDeviceId() {
    if (deviceId) return deviceId
    var id
    try {
      id = api.getStorageSync(deviceKey)
    } catch (e) {
      throw storageError('read', e)
    }
    if (typeof id !== 'string' || !DEVICE_ID_RE.test(id)) {
      id = randomDeviceId()
      try {
        api.setStorageSync(deviceKey, id)
      } catch (e) {
        throw storageError('write', e)
      }
    }
    deviceId = id
    return id
  }

  function deviceInfo() {
    var info
    try {
      if (typeof api.getDeviceInfo === 'function') info = api.getDeviceInfo()
      else if (typeof api.getSystemInfoSync === 'function') info = api.getSystemInfoSync()
    } catch (e) {
      info = null
    }
    var out = {}
    var any = false
    for (var i = 0; info && i < DEVICE_FIELDS.length; i++) {
      var v = info[DEVICE_FIELDS[i]]
      if (typeof v === 'string' && v) {
        out[DEVICE_FIELDS[i]] = v.slice(0, 64)
        any = true
      }
    }
    return any ? out : undefined
  }

  function resolveURL(url) {
    if (isAbsolute(url)) return url.indexOf('//') === 0 ? apiOrigin.split(':')[0] + ':' + url : url
    return baseURL + '/' + url.replace(/^\/+/, '')
  }

  /** send does one platform request; it resolves for every HTTP status. */
  function send(opts, url, sessionID) {
    var params = {}
    for (var k in opts) {
      if (hasOwn(opts, k) && k !== 'success' && k !== 'fail' && k !== 'complete' && k !== 'header') params[k] = opts[k]
    }
    var header = {}
    var src = opts.header || {}
    for (var h in src) {
      if (hasOwn(src, h)) header[h] = src[h]
    }
    if (sessionID) header.Authorization = 'Bearer ' + sessionID
    params.url = url
    params.method = (opts.method || 'GET').toUpperCase()
    params.header = header
    return invoke(api, 'request', params).then(
      function (res) {
        return { statusCode: res.statusCode, data: res.data, header: res.header || res.headers || {} }
      },
      function (e) {
        throw new WxSessionError('network', 'wxsession: request failed: ' + errMsg(e), { cause: e })
      }
    )
  }

  function sendJSON(method, path, body, sessionID) {
    return send({ method: method, data: body, header: body === undefined ? {} : { 'content-type': 'application/json' } }, resolveURL(path), sessionID)
  }

  function emitEnded(sessionID, reason) {
    if (reported.indexOf(sessionID) >= 0) return
    reported.push(sessionID)
    if (reported.length > 16) reported.shift()
    var ls = listeners.slice()
    for (var i = 0; i < ls.length; i++) {
      try {
        ls[i]({ reason: reason })
      } catch (e) {
        if (typeof console !== 'undefined') console.error('wxsession: onSessionEnded listener threw', e)
      }
    }
  }

  /** ended records that the session `s` ended for `reason` (clearing it if it is still ours). */
  function ended(s, reason) {
    var cur = state
    if (cur && cur.session_id === s.session_id) {
      currentSid = null
      save(FINAL_REASONS[reason] ? { ended: reason } : null)
    } else if (FINAL_REASONS[reason] && !(cur && cur.session_id)) {
      save({ ended: reason })
    }
    emitEnded(s.session_id, reason)
  }

  function takeCode() {
    var now = Date.now()
    if (now < notBefore) {
      return Promise.reject(
        new WxSessionError('throttled', 'wxsession: the server asked to wait before logging in again', {
          retryAfter: Math.ceil((notBefore - now) / 1000)
        })
      )
    }
    if (pendingCode && now - pendingCode.at < CODE_REUSE_MS && now >= pendingCode.at) {
      return Promise.resolve(pendingCode.code)
    }
    pendingCode = null
    while (loginTimes.length && (now - loginTimes[0] >= LOGIN_WINDOW_MS || now < loginTimes[0])) loginTimes.shift()
    if (loginTimes.length >= LOGINS_PER_WINDOW) {
      return Promise.reject(
        new WxSessionError('throttled', 'wxsession: ' + LOGINS_PER_WINDOW + ' logins in a minute: not calling wx.login again yet', {
          retryAfter: Math.ceil((loginTimes[0] + LOGIN_WINDOW_MS - now) / 1000)
        })
      )
    }
    loginTimes.push(now)
    return invoke(api, 'login', { provider: 'weixin' }).then(
      function (res) {
        if (!res || typeof res.code !== 'string' || !res.code) {
          throw new WxSessionError('wx_login', 'wxsession: wx.login returned no code', { cause: res })
        }
        pendingCode = { code: res.code, at: Date.now() }
        return res.code
      },
      function (e) {
        throw new WxSessionError('wx_login', 'wxsession: wx.login failed: ' + errMsg(e), { cause: e })
      }
    )
  }

  function doLogin() {
    var body
    return takeCode()
      .then(function (code) {
        body = { code: code, device_id: getDeviceId() }
        var dev = deviceInfo()
        if (dev) body.device = dev
        return sendJSON('POST', '/login', body)
      })
      .then(function (res) {
        // An HTTP answer: the code is spent (or refused) unless WeChat was unreachable.
        if (res.statusCode < 500) pendingCode = null
        var b = parseBody(res.data)
        if (res.statusCode === 200 && b && typeof b.session_id === 'string' && b.session_id && typeof b.expires_in === 'number') {
          var lifetime = b.expires_in * 1000
          // Expiry from expires_in at receipt, on this device's clock only: a phone whose
          // clock is days off still keeps the session for its whole lifetime.
          var s = {
            session_id: b.session_id,
            openid: b.openid,
            expires_at: b.expires_at,
            deadline: Date.now() + lifetime,
            lifetime: lifetime
          }
          currentSid = null
          save(s)
          return s
        }
        var retryAfter = retryAfterSeconds(res.header)
        if (res.statusCode === 429 || res.statusCode === 503) {
          if (retryAfter) notBefore = Date.now() + retryAfter * 1000
        }
        var code = errorCode(b)
        var props = { statusCode: res.statusCode, code: code, retryAfter: retryAfter }
        if (code === 'user_banned') {
          props.reason = 'banned'
          if (b && typeof b.until === 'string') props.until = b.until
          var cur = state
          save({ ended: 'banned' })
          if (cur && cur.session_id) emitEnded(cur.session_id, 'banned')
        }
        throw new WxSessionError('login', 'wxsession: login refused (' + res.statusCode + (code ? ' ' + code : '') + ')', props)
      })
  }

  /** login() starts a new session; every concurrent caller shares one wx.login + POST /login. */
  function login() {
    if (inflight) return inflight
    var p = doLogin()
    inflight = p
    var done = function () {
      if (inflight === p) inflight = null
    }
    p.then(done, done)
    return p
  }

  /** sessionForRequest is the session a request to the API uses, logging in if needed. */
  function sessionForRequest() {
    if (inflight) return inflight
    var s
    try {
      s = load()
    } catch (e) {
      return Promise.reject(e)
    }
    if (s && s.ended) {
      return Promise.reject(
        new WxSessionError('session_ended', 'wxsession: the session ended (' + s.ended + '); call login() to start a new one', { reason: s.ended })
      )
    }
    if (live(s)) return Promise.resolve(s)
    return login()
  }

  /** check asks GET /session about the session id (one request per id at a time). */
  function check(sessionID) {
    if (checks[sessionID]) return checks[sessionID]
    var p = sendJSON('GET', '/session', undefined, sessionID).then(function (res) {
      var b = parseBody(res.data)
      if (res.statusCode === 200 && b && b.state === 'active') return { active: true }
      if (res.statusCode === 200 && b && b.state === 'ended' && typeof b.reason === 'string') return { reason: b.reason }
      if ((res.statusCode === 200 && b && b.state === 'unknown') || res.statusCode === 401) return { reason: 'unknown' }
      throw new WxSessionError('session_check', 'wxsession: GET /session answered ' + res.statusCode, { statusCode: res.statusCode, code: errorCode(b) })
    })
    checks[sessionID] = p
    var done = function () {
      delete checks[sessionID]
    }
    p.then(done, done)
    return p
  }

  /**
   * run sends a request to the API with the session. After a 401/403 it asks GET /session:
   * active -> the answer is the route's own and is handed back; ended -> the reason is
   * reported and, unless final or already done for this request, the client logs in once
   * and sends the request once more. noLogin: never call wx.login (phone decryption).
   */
  function run(opts, url, noLogin) {
    var retried = false
    function attempt(s) {
      return send(opts, url, s.session_id).then(function (res) {
        if (res.statusCode !== 401 && res.statusCode !== 403) return res
        // Another request already replaced this session: use the new one.
        var cur = state
        if (!retried && cur && cur.session_id && cur.session_id !== s.session_id && live(cur)) {
          retried = true
          return attempt(cur)
        }
        if (!retried && inflight && !noLogin) {
          retried = true
          return inflight.then(attempt)
        }
        return check(s.session_id).then(function (r) {
          if (r.active) return res
          ended(s, r.reason)
          if (FINAL_REASONS[r.reason] || retried || noLogin) {
            throw new WxSessionError('session_ended', 'wxsession: the session ended (' + r.reason + ')', { reason: r.reason, statusCode: res.statusCode })
          }
          retried = true
          return login().then(attempt, function (e) {
            if (e && e.reason === undefined) e.reason = r.reason
            throw e
          })
        })
      })
    }
    var first
    if (noLogin) {
      first = Promise.resolve().then(function () {
        var s = load()
        if (!live(s)) throw new WxSessionError('phone', 'wxsession: no live session to decrypt with', { code: 'session_key_stale' })
        return s
      })
    } else {
      first = sessionForRequest()
    }
    return first.then(attempt)
  }

  /**
   * request(options) is wx.request with the session: options are wx.request's (url relative
   * to baseURL or absolute, method, data, header, timeout, …). It resolves
   * { statusCode, data, header } for every HTTP status and rejects with a WxSessionError
   * only when the request or the login fails, or the session ended for good.
   */
  function request(opts) {
    if (!opts || typeof opts.url !== 'string' || !opts.url) {
      return Promise.reject(new TypeError('wxsession: request needs options.url'))
    }
    var url = resolveURL(opts.url)
    // The session goes to the API's origin only; another origin's 401/403 is its own.
    if (origin(url) !== apiOrigin || getHeader(opts.header, 'authorization') !== undefined) {
      return send(opts, url, null)
    }
    return run(opts, url, false)
  }

  function httpError(what, res) {
    var code = errorCode(res.data)
    return new WxSessionError('http', 'wxsession: ' + what + ' answered ' + res.statusCode + (code ? ' ' + code : ''), {
      statusCode: res.statusCode,
      code: code,
      retryAfter: retryAfterSeconds(res.header)
    })
  }

  function api_(method, path, body, noLogin) {
    var opts = { method: method }
    if (body !== undefined) {
      opts.data = body
      opts.header = { 'content-type': 'application/json' }
    }
    return run(opts, resolveURL(path), noLogin)
  }

  /** logout({ all }) ends this session (or, with all, every session of the user) and clears it. */
  function logout(o) {
    var all = !!(o && o.all)
    var wait = inflight ? inflight.then(null, function () {}) : Promise.resolve()
    return wait.then(function () {
      var s = load()
      if (!all && !(s && s.session_id)) {
        save(null)
        return { statusCode: 204 }
      }
      var p = all ? api_('POST', '/logout?scope=all') : sendJSON('POST', '/logout', undefined, s.session_id)
      return p.then(
        function (res) {
          currentSid = null
          save(null)
          return { statusCode: res.statusCode }
        },
        function (e) {
          currentSid = null
          try {
            save(null)
          } catch (ignored) {
            /* the request's error is the one to report */
          }
          throw e
        }
      )
    })
  }

  /** sessions() resolves the user's sessions, one per device (GET /me/sessions, every page). */
  function sessions() {
    var out = []
    var pages = 0
    function page(path) {
      return api_('GET', path).then(function (res) {
        var b = parseBody(res.data)
        if (res.statusCode !== 200 || !b || !Array.isArray(b.sessions)) throw httpError('GET /me/sessions', res)
        for (var i = 0; i < b.sessions.length; i++) {
          out.push(b.sessions[i])
          if (b.sessions[i] && b.sessions[i].current) currentSid = b.sessions[i].sid
        }
        // Pages of GET /me/sessions follow next_cursor (bounded: a server bug cannot loop us).
        if (typeof b.next_cursor === 'string' && b.next_cursor && ++pages < 100) {
          return page('/me/sessions?cursor=' + encodeURIComponent(b.next_cursor))
        }
        return out
      })
    }
    return page('/me/sessions')
  }

  /** endSession(sid) ends one of the user's sessions (a sid from sessions()). */
  function endSession(sid) {
    if (typeof sid !== 'string' || !sid) return Promise.reject(new TypeError('wxsession: endSession needs a sid from sessions()'))
    return api_('DELETE', '/me/sessions/' + encodeURIComponent(sid)).then(function (res) {
      if (res.statusCode !== 204 && res.statusCode !== 200) throw httpError('DELETE /me/sessions/{sid}', res)
      if (sid === currentSid) {
        currentSid = null
        save(null)
      }
    })
  }

  /**
   * bindPhoneNumber(event) binds the phone number of a getPhoneNumber button's event
   * (<button open-type="getPhoneNumber" bindgetphonenumber="…">) and resolves
   * { phone_number, pure_phone_number, country_code }. It posts the event's `code`; on base
   * libraries too old to give one it posts encryptedData/iv, only after GET /me/session-key
   * says the session key is still valid, and never calls wx.login (that would replace the key
   * the data was encrypted with).
   */
  function bindPhoneNumber(event) {
    var d = (event && event.detail) || event || {}
    if (typeof d.errMsg === 'string' && /fail/i.test(d.errMsg)) {
      return Promise.reject(new WxSessionError('phone', 'wxsession: getPhoneNumber failed: ' + d.errMsg, { code: 'user_denied', cause: d }))
    }
    function answer(res) {
      var b = parseBody(res.data)
      if (res.statusCode !== 200 || !b || typeof b !== 'object') throw httpError('POST /me/phone', res)
      return b
    }
    if (typeof d.code === 'string' && d.code) {
      return api_('POST', '/me/phone', { code: d.code }).then(answer)
    }
    if (typeof d.encryptedData === 'string' && d.encryptedData && typeof d.iv === 'string' && d.iv) {
      return api_('GET', '/me/session-key', undefined, true).then(function (res) {
        var b = parseBody(res.data)
        if (res.statusCode !== 200 || !b || typeof b.valid !== 'boolean') throw httpError('GET /me/session-key', res)
        if (!b.valid) {
          throw new WxSessionError('phone', 'wxsession: the session key expired; log in again, then ask the user to tap once more', { code: 'session_key_stale' })
        }
        return api_('POST', '/me/phone', { encryptedData: d.encryptedData, iv: d.iv }, true).then(answer)
      })
    }
    return Promise.reject(new WxSessionError('phone', 'wxsession: the event carries neither code nor encryptedData', { code: 'no_code' }))
  }

  /** deleteAccount() deletes the user (DELETE /me) and forgets the session. */
  function deleteAccount() {
    return api_('DELETE', '/me').then(function (res) {
      if (res.statusCode !== 204 && res.statusCode !== 200) throw httpError('DELETE /me', res)
      currentSid = null
      save({ ended: 'account_deleted' })
    })
  }

  /** onSessionEnded(fn) calls fn({ reason }) when the server reports this device's session ended; returns an unsubscribe function. */
  function onSessionEnded(fn) {
    if (typeof fn !== 'function') throw new TypeError('wxsession: onSessionEnded needs a function')
    listeners.push(fn)
    return function () {
      var i = listeners.indexOf(fn)
      if (i >= 0) listeners.splice(i, 1)
    }
  }

  /** session() returns the stored session ({ session_id, openid, expires_at }) or null. */
  function session() {
    var s = load()
    if (!live(s)) return null
    return { session_id: s.session_id, openid: s.openid, expires_at: s.expires_at }
  }

  return {
    login: function () {
      if (inflight) return inflight
      // An explicit login lifts the stop after banned / account_deleted.
      try {
        var s = load()
        if (s && s.ended) save(null)
      } catch (e) {
        return Promise.reject(e)
      }
      return login()
    },
    request: request,
    logout: logout,
    sessions: sessions,
    endSession: endSession,
    bindPhoneNumber: bindPhoneNumber,
    deleteAccount: deleteAccount,
    onSessionEnded: onSessionEnded,
    session: session
  }
}

module.exports = { createClient: createClient, WxSessionError: WxSessionError, version: VERSION }
