'use strict'
// Shared helpers of the client suites: the stack's URLs (the Go e2e test starts the stack and
// sets WXSESSION_API_URL / WXSESSION_WECHAT_URL), simulated devices, raw HTTP against the
// stack, a skewed phone clock, and a stand-in business route.
const http = require('node:http')
const fs = require('node:fs')
const { createClient } = require('../lib/index.js')
const { createDevice } = require('./platforms.js')

const apiURL = process.env.WXSESSION_API_URL
const wechatURL = process.env.WXSESSION_WECHAT_URL
if (!apiURL || !wechatURL) {
  throw new Error('set WXSESSION_API_URL and WXSESSION_WECHAT_URL (make test starts the local stack and sets them)')
}

/**
 * recordSession tells the Go harness about a session id this process received
 * (WXSESSION_SEEN_IDS names a file, one id a line): its leak check then looks for the id, and
 * knows its hash, in every log of the run.
 */
function recordSession(id) {
  const file = process.env.WXSESSION_SEEN_IDS
  if (file && typeof id === 'string' && id) fs.appendFileSync(file, id + '\n')
}

/** phoneNumber returns a random mainland mobile number (numbers may be unique per user). */
function phoneNumber(prefix = '13') {
  let n = prefix
  while (n.length < 11) n += Math.floor(Math.random() * 10)
  return n
}

/** device makes a simulated device of a platform kind and a client on it. */
function device(kind, o) {
  o = o || {}
  const dev = createDevice({ kind, wechatURL, openid: o.openid, storage: o.storage, onSession: recordSession })
  const client = createClient({ baseURL: o.baseURL || apiURL, platform: dev.api })
  return { dev, client }
}

function countLogins(dev) {
  return dev.calls.requests.filter((r) => r.method === 'POST' && /\/login$/.test(r.url)).length
}

function requestsTo(dev, re) {
  return dev.calls.requests.filter((r) => re.test(r.method + ' ' + r.url))
}

async function raw(method, path, { id, body, headers } = {}) {
  const h = Object.assign({}, headers)
  if (id) h.authorization = 'Bearer ' + id
  if (body !== undefined) h['content-type'] = 'application/json'
  const r = await fetch(apiURL + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await r.text()
  let data = text
  try {
    data = JSON.parse(text)
  } catch (e) {
    /* not JSON */
  }
  return { status: r.status, data, headers: r.headers }
}

async function emulator(method, path, body) {
  const r = await fetch(wechatURL + path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await r.text()
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text}`)
  return text ? JSON.parse(text) : null
}

/** rawLogin logs openid in without the client (another device, or the same device_id). */
async function rawLogin(openid, extra) {
  const { code } = await emulator('POST', '/test/codes', { openid })
  const r = await raw('POST', '/login', { body: Object.assign({ code }, extra) })
  if (r.status !== 200) throw new Error('POST /login: ' + r.status + ' ' + JSON.stringify(r.data))
  recordSession(r.data.session_id)
  return r.data
}

async function sessionState(id) {
  return (await raw('GET', '/session', { id })).data
}

/** withClock runs fn with Date.now() offset by ms (the phone's clock is wrong). */
async function withClock(ms, fn) {
  const real = Date.now
  Date.now = () => real() + ms
  try {
    return await fn()
  } finally {
    Date.now = real
  }
}

/** frozenClock stops the phone's clock at its current time until the returned function is called. */
function frozenClock() {
  const real = Date.now
  const at = real()
  Date.now = () => at
  return () => {
    Date.now = real
  }
}

/**
 * businessProxy starts a reverse proxy in front of the stack: the client's baseURL, one
 * origin. Every path goes to the stack, except /biz/* which answers like a business function
 * that refuses this user (403 {"error":"not_your_order"}), counting the hits.
 */
async function businessProxy() {
  const hits = []
  const srv = http.createServer(async (req, res) => {
    const chunks = []
    for await (const c of req) chunks.push(c)
    const body = Buffer.concat(chunks)
    if (req.url.startsWith('/biz/')) {
      hits.push({ method: req.method, url: req.url, auth: req.headers.authorization || '' })
      res.writeHead(403, { 'content-type': 'application/json' })
      res.end('{"error":"not_your_order","message":"this order belongs to another user"}')
      return
    }
    const headers = Object.assign({}, req.headers)
    delete headers.host
    delete headers.connection
    const r = await fetch(apiURL + req.url, { method: req.method, headers, body: body.length ? body : undefined })
    const out = Buffer.from(await r.arrayBuffer())
    const h = {}
    r.headers.forEach((v, k) => {
      if (k !== 'content-encoding' && k !== 'transfer-encoding' && k !== 'connection') h[k] = v
    })
    res.writeHead(r.status, h)
    res.end(out)
  })
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve))
  return { url: 'http://127.0.0.1:' + srv.address().port, hits, close: () => new Promise((r) => srv.close(r)) }
}

/** foreignServer is another origin (a CDN, a third-party API) that answers `status` to everything. */
async function foreignServer(status) {
  const hits = []
  const srv = http.createServer((req, res) => {
    hits.push({ method: req.method, url: req.url, auth: req.headers.authorization || '', cookie: req.headers.cookie || '' })
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end('{"message":"Forbidden"}')
  })
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve))
  return { url: 'http://127.0.0.1:' + srv.address().port, hits, close: () => new Promise((r) => srv.close(r)) }
}

const DAY = 24 * 3600 * 1000

module.exports = {
  apiURL,
  wechatURL,
  device,
  countLogins,
  requestsTo,
  raw,
  emulator,
  rawLogin,
  sessionState,
  withClock,
  frozenClock,
  recordSession,
  phoneNumber,
  businessProxy,
  foreignServer,
  DAY
}
