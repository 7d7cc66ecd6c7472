'use strict'
// Runs the sample mini-program (examples/miniprogram) against the local stack on a simulated
// wx: App/Page/getApp as the mini-program runtime provides them, and require('wxsession')
// resolved the way DevTools does after "Build npm" (miniprogram_npm/wxsession/index.js).
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const os = require('node:os')
const Module = require('node:module')
const { execFileSync } = require('node:child_process')
const h = require('./helpers.js')
const { createDevice } = require('./platforms.js')

const exampleDir = path.join(__dirname, '..', '..', 'examples', 'miniprogram')
const clientDir = path.join(__dirname, '..')

/**
 * buildExample copies the sample to a temporary directory and gives it miniprogram_npm/ the way
 * `npm install` + DevTools' "Build npm" do: the package's tarball (npm pack), whose
 * `miniprogram` directory becomes miniprogram_npm/wxsession/.
 */
function buildExample() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wxsession-example-'))
  const app = path.join(tmp, 'app')
  fs.cpSync(exampleDir, app, { recursive: true, filter: (src) => !/(node_modules|miniprogram_npm)$/.test(src) })
  const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: clientDir, encoding: 'utf8' })
  const tgz = path.join(tmp, JSON.parse(out)[0].filename)
  execFileSync('tar', ['-xzf', tgz, '-C', tmp])
  const pkg = JSON.parse(fs.readFileSync(path.join(tmp, 'package', 'package.json'), 'utf8'))
  fs.cpSync(path.join(tmp, 'package', pkg.miniprogram), path.join(app, 'miniprogram_npm', pkg.name), { recursive: true })
  return { dir: app, cleanup: () => fs.rmSync(tmp, { recursive: true, force: true }) }
}

test('the sample depends on the package and its built layout has index.js', (t) => {
  const deps = JSON.parse(fs.readFileSync(path.join(exampleDir, 'package.json'), 'utf8')).dependencies
  assert.equal(deps.wxsession, 'file:../../client')
  const built = buildExample()
  t.after(built.cleanup)
  assert.deepEqual(fs.readdirSync(path.join(built.dir, 'miniprogram_npm', 'wxsession')).sort(), ['index.d.ts', 'index.js'])
})

/** loadExample runs app.js and the index page in a simulated runtime and returns them. */
function loadExample(dev, t) {
  const built = buildExample()
  t.after(built.cleanup)
  const dir = built.dir
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
    // DevTools resolves a package name to miniprogram_npm/<name>/index.js.
    if (request === 'wxsession' && parent && parent.filename && parent.filename.startsWith(dir)) {
      return path.join(dir, 'miniprogram_npm', 'wxsession', 'index.js')
    }
    return resolve.call(this, request, parent, ...rest)
  }
  try {
    // The sample's config points at `make dev`; here, at the test stack.
    const configPath = path.join(dir, 'config.js')
    require.cache[configPath] = { id: configPath, filename: configPath, loaded: true, exports: { baseURL: h.apiURL } }
    require(path.join(dir, 'app.js'))
    require(path.join(dir, 'pages', 'index', 'index.js'))
  } finally {
    Module._resolveFilename = resolve
  }
  // The runtime's globals stay until the test calls restore(): handlers use wx when they run.
  const restore = () => Object.assign(globalThis, saved)
  return { app, page, modals, restore }
}

test('the sample mini-program logs in, lists devices and handles an ended session', async (t) => {
  const dev = createDevice({ kind: 'wx', wechatURL: h.wechatURL, onSession: h.recordSession })
  const { app, page, modals, restore } = loadExample(dev, t)
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
  const dev = createDevice({ kind: 'wx', wechatURL: h.wechatURL, onSession: h.recordSession })
  const { app, page, restore } = loadExample(dev, t)
  t.after(restore)
  await app.onLaunch()
  await page.onShow()
  assert.equal(page.data.phone, '', 'no phone yet (GET /me/phone: 404)')
  const number = h.phoneNumber('137')
  const { code } = await h.emulator('POST', '/test/phone-codes', { openid: dev.openid, phone_number: number })
  await page.onGetPhoneNumber({ type: 'getphonenumber', detail: { errMsg: 'getPhoneNumber:ok', code } })
  assert.equal(page.data.phone, number)
  await page.onGetPhoneNumber({ detail: { errMsg: 'getPhoneNumber:fail user deny' } })
  assert.equal(page.data.error, '')
  await page.refresh()
  assert.equal(page.data.phone, number)
})
