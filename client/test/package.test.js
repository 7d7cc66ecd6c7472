'use strict'
// The package as published: what `npm pack` ships, declarations that match the code and
// type-check sample apps (tsc, pinned), platform detection, option checks and the size.
// Needs no stack; needs the dev dependencies (npm ci in client/, which make test runs).
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const lib = require('../lib/index.js')

const root = path.join(__dirname, '..')
const read = (f) => fs.readFileSync(path.join(root, f), 'utf8')
const pkg = JSON.parse(read('package.json'))
const dts = read('lib/index.d.ts')
const src = read('lib/index.js')

function needDevDeps() {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  assert.ok(fs.existsSync(tsc), 'client/node_modules is missing: run `npm ci` in client/ (make test does)')
  return tsc
}

/** union returns the string members of `export type name = 'a' | 'b' …` in index.d.ts. */
function union(name) {
  const m = new RegExp('export type ' + name + ' =([^]*?)\\n\\n').exec(dts)
  assert.ok(m, 'index.d.ts declares ' + name)
  return [...m[1].matchAll(/'([a-z_]+)'/g)].map((x) => x[1]).sort()
}

test('npm pack ships only the library, its declarations, the changelog and the readme', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' })
  const files = JSON.parse(out)[0].files.map((f) => f.path).sort()
  assert.deepEqual(files, ['CHANGELOG.md', 'README.md', 'lib/index.d.ts', 'lib/index.js', 'package.json'])
})

test('package.json: CommonJS entry, types, the miniprogram directory, no runtime dependencies, pinned dev tools', () => {
  assert.equal(pkg.name, 'wxsession')
  assert.equal(pkg.main, 'lib/index.js')
  assert.equal(pkg.types, 'lib/index.d.ts')
  // DevTools' npm build copies the `miniprogram` directory to miniprogram_npm/wxsession/ and
  // resolves require('wxsession') to its index.js.
  assert.equal(pkg.miniprogram, 'lib')
  assert.ok(fs.existsSync(path.join(root, pkg.miniprogram, 'index.js')))
  assert.equal(pkg.type, undefined, 'CommonJS')
  assert.equal(pkg.dependencies, undefined, 'no runtime dependencies')
  for (const [name, version] of Object.entries(pkg.devDependencies)) assert.match(version, /^\d+\.\d+\.\d+$/, name + ' is pinned')
  assert.equal(lib.version, pkg.version, 'lib/index.js reports the package version')
  assert.match(read('CHANGELOG.md'), new RegExp('## ' + pkg.version.replace(/\./g, '\\.')))
  const code = src
    .split('\n')
    .filter((l) => !/^\s*(\*|\/\/|\/\*)/.test(l))
    .join('\n')
  assert.doesNotMatch(code, /\brequire\(/, 'lib/index.js requires nothing')
})

test('index.d.ts declares exactly what lib/index.js exports', () => {
  const declared = [...dts.matchAll(/^export declare (?:function|class|const) (\w+)/gm)].map((m) => m[1]).sort()
  assert.deepEqual(declared, Object.keys(lib).sort())
  const iface = /export interface Client \{([^]*?)\n\}/.exec(dts)[1]
  const methods = [...iface.matchAll(/^ {2}(\w+)(?:<[^>]*>)?\(/gm)].map((m) => m[1]).sort()
  const client = lib.createClient({ baseURL: 'https://api.example.com', platform: { login() {}, request() {}, getStorageSync() {}, setStorageSync() {}, removeStorageSync() {} } })
  assert.deepEqual(methods, Object.keys(client).sort())
  const kinds = [...new Set([...src.matchAll(/new WxSessionError\('([a-z_]+)'/g)].map((m) => m[1]))].sort()
  assert.deepEqual(union('ErrorKind'), kinds)
  // The reasons of GET /session (docs/design.md §3), plus 'unknown'.
  const reasons = ['logged_out', 'logged_out_all', 'replaced', 'evicted', 'revoked', 'kicked', 'banned', 'account_deleted', 'idle_timeout', 'expired', 'unknown']
  assert.deepEqual(union('EndReason'), reasons.sort())
})

test('tsc --noEmit type-checks the native, uni-app and Taro sample apps', () => {
  const tsc = needDevDeps()
  try {
    execFileSync(process.execPath, [tsc, '-p', path.join(root, 'test', 'types')], { cwd: root, encoding: 'utf8' })
  } catch (e) {
    assert.fail('tsc failed:\n' + e.stdout + e.stderr)
  }
})

test('the platform is detected: uni, then wx, then Taro; or named', async () => {
  const seen = []
  const fake = (name) => ({
    login(o) {
      seen.push(name)
      o.fail({ errMsg: 'login:fail test' })
    },
    request() {},
    getStorageSync() {
      return ''
    },
    setStorageSync() {},
    removeStorageSync() {}
  })
  const cases = [
    { globals: { wx: fake('wx') }, platform: undefined, want: 'wx' },
    { globals: { wx: fake('wx'), uni: fake('uni') }, platform: undefined, want: 'uni' },
    { globals: { Taro: fake('Taro') }, platform: undefined, want: 'Taro' },
    { globals: { wx: fake('wx'), uni: fake('uni') }, platform: 'wx', want: 'wx' },
    { globals: { wx: fake('wx'), Taro: fake('Taro') }, platform: 'taro', want: 'Taro' },
    { globals: { wx: fake('wx') }, platform: fake('object'), want: 'object' }
  ]
  for (const c of cases) {
    Object.assign(globalThis, c.globals)
    try {
      seen.length = 0
      const client = lib.createClient({ baseURL: 'https://api.example.com', platform: c.platform })
      await assert.rejects(client.login(), (e) => e.kind === 'wx_login')
      assert.deepEqual(seen, [c.want], JSON.stringify(Object.keys(c.globals)) + ' ' + c.platform)
    } finally {
      for (const k of Object.keys(c.globals)) delete globalThis[k]
    }
  }
})

test('createClient refuses bad options', () => {
  const platform = { login() {}, request() {}, getStorageSync() {}, setStorageSync() {}, removeStorageSync() {} }
  const bad = [
    [{}, /baseURL/],
    [{ baseURL: 'api.example.com', platform }, /baseURL/],
    [{ baseURL: 'ftp://api.example.com', platform }, /baseURL/],
    [{ baseURL: 'https://api.example.com' }, /no uni, wx or Taro/],
    [{ baseURL: 'https://api.example.com', platform: 'taro' }, /platform: Taro/],
    [{ baseURL: 'https://api.example.com', platform: 'alipay' }, /platform must be/],
    [{ baseURL: 'https://api.example.com', platform: { request() {} } }, /lacks/]
  ]
  for (const [opts, re] of bad) assert.throws(() => lib.createClient(opts), re)
})

test('the minified size stays small', () => {
  needDevDeps()
  const out = JSON.parse(execFileSync(process.execPath, [path.join(root, 'scripts', 'size.js')], { encoding: 'utf8' }))
  assert.ok(out.min_bytes > 0 && out.min_bytes < 16 * 1024, 'minified ' + out.min_bytes + ' B')
  assert.ok(out.min_gzip_bytes < 6 * 1024, 'minified + gzip ' + out.min_gzip_bytes + ' B')
})
