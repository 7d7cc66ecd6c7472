'use strict'
// Runs the sample mini-program (examples/miniprogram) against the local stack on a simulated
// wx: App/Page/getApp as the mini-program runtime provides them, and require('wxsession')
// resolved the way DevTools does after "Build npm" (miniprogram_npm/wxsession/index.js).
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const Module = require('node:module')
const h = require('./helpers.js')
const { createDevice } = require('./platforms.js')

const exampleDir = path.join(__dirname, '..', '..', 'examples', 'miniprogram')
const npmDir = path.join(exampleDir, 'miniprogram_npm', 'wxsession')

test('miniprogram_npm/wxsession is what DevTools’ npm build makes of the package', () => {
  const pkg = require('../package.json')
  const built = path.join(__dirname, '..', pkg.miniprogram)
  const want = fs.readdirSync(built).sort()
  assert.deepEqual(fs.readdirSync(npmDir).sort(), want)
  for (const f of want) {
    assert.equal(
      fs.readFileSync(path.join(npmDir, f), 'utf8'),
      fs.readFileSync(path.join(built, f), 'utf8'),
      f + ' differs: copy client/lib/* to examples/miniprogram/miniprogram_npm/wxsession/ (what DevTools’ "Build npm" does)'
    )
  }
  const app = JSON.parse(fs.readFileSync(path.join(exampleDir, 'package.json'), 'utf8'))
  assert.equal(app.dependencies.wxsession, 'file:../../client')
})

/** loadExample runs app.js and the index page in a simulated runtime and returns them. */
function loadExample(dev) {
  const modals = []
  const wx = Object.assign({}, dev.api, {
    showModal: (o) => modals.push(o),
    reLaunch() {}
  })
  let app = null
  let page = null
  const saved = { wx: globalThis.wx, App: globalThis.App, Page: globalThis.Page, getApp: globalThis.getApp }
  Object.assign(globalThis, {
    wx,
    App: (o) => {
      app = o
    },
    getApp: () => app,
    Page: (o) => {
      page = Object.assign({}, o, {
        data: Object.assign({}, o.data),
        setData(d) {
          Object.assign(this.data, d)
        }
      })
    }
  })
  const resolve = Module._resolveFilename
  Module._resolveFilename = function (request, parent, ...rest) {
    if (request === 'wxsession' && parent && parent.filename && parent.filename.startsWith(exampleDir)) {
      return path.join(npmDir, 'index.js')
    }
    return resolve.call(this, request, parent, ...rest)
  }
  try {
    for (const k of Object.keys(require.cache)) if (k.startsWith(exampleDir)) delete require.cache[k]
    // The sample's config points at `make dev`; here, at the test stack.
    const configPath = path.join(exampleDir, 'config.js')
    require.cache[configPath] = { id: configPath, filename: configPath, loaded: true, exports: { baseURL: h.apiURL } }
    require(path.join(exampleDir, 'app.js'))
    require(path.join(exampleDir, 'pages', 'index', 'index.js'))
  } finally {
    Module._resolveFilename = resolve
  }
  // The runtime's globals stay until the test calls restore(): handlers use wx when they run.
  const restore = () => Object.assign(globalThis, saved)
  return { app, page, modals, restore }
}

test('the sample mini-program logs in, lists devices and handles an ended session', async (t) => {
  const dev = createDevice({ kind: 'wx', wechatURL: h.wechatURL })
  const { app, page, modals, restore } = loadExample(dev)
  t.after(restore)
  assert.ok(app && page, 'App() and Page() were called')
  await app.onLaunch()
  await page.onShow()
  assert.equal(page.data.error, '')
  assert.equal(page.data.openid, dev.openid)
  assert.equal(page.data.devices.length, 1)
  assert.equal(page.data.devices[0].current, true)

  // Another device of the user ends this one: the app shows why, and the client logs in again.
  const other = await h.rawLogin(dev.openid)
  const list = await h.raw('GET', '/me/sessions', { id: other.session_id })
  const mine = list.data.sessions.find((s) => !s.current)
  assert.equal((await h.raw('DELETE', '/me/sessions/' + mine.sid, { id: other.session_id })).status, 204)
  await page.refresh()
  assert.equal(page.data.openid, dev.openid)
  assert.equal(page.data.devices.length, 2)
  assert.deepEqual(modals.map((m) => m.content), ['你已在其他设备上退出了本设备'])

  const otherDevice = page.data.devices.find((d) => !d.current)
  await page.endDevice({ currentTarget: { dataset: { sid: otherDevice.sid } } })
  assert.equal(page.data.devices.length, 1)
  assert.equal((await h.raw('GET', '/me', { id: other.session_id })).status, 403)

  await page.logout()
  assert.equal(page.data.openid, '')
  assert.equal(dev.calls.login, 2)
})

test('the sample mini-program binds a phone number from the button', async (t) => {
  const dev = createDevice({ kind: 'wx', wechatURL: h.wechatURL })
  const { app, page, restore } = loadExample(dev)
  t.after(restore)
  await app.onLaunch()
  await page.onShow()
  assert.equal(page.data.phone, '', 'no phone yet (GET /me/phone: 404)')
  const { code } = await h.emulator('POST', '/test/phone-codes', { openid: dev.openid, phone_number: '13700137000' })
  await page.onGetPhoneNumber({ type: 'getphonenumber', detail: { errMsg: 'getPhoneNumber:ok', code } })
  assert.equal(page.data.phone, '13700137000')
  await page.onGetPhoneNumber({ detail: { errMsg: 'getPhoneNumber:fail user deny' } })
  assert.equal(page.data.error, '')
  await page.refresh()
  assert.equal(page.data.phone, '13700137000')
})
