const app = getApp()

// Every handler returns its promise so the tests (client/test/example.test.js) can await it.
Page({
  data: { openid: '', phone: '', devices: [], error: '' },

  onShow() {
    return this.refresh()
  },

  async refresh() {
    try {
      const me = await app.api.request({ url: '/me' })
      if (me.statusCode !== 200) return this.setData({ error: '加载失败 ' + me.statusCode })
      const devices = await app.api.sessions()
      const phone = await app.api.request({ url: '/me/phone' })
      this.setData({
        openid: me.data.openid,
        devices,
        phone: phone.statusCode === 200 ? phone.data.phone_number : '',
        error: ''
      })
    } catch (err) {
      this.setData({ openid: '', devices: [], error: describe(err) })
    }
  },

  // <button open-type="getPhoneNumber">: the event goes to the client as is. Do not call
  // wx.login here (the client never does on the legacy path).
  async onGetPhoneNumber(e) {
    try {
      const phone = await app.api.bindPhoneNumber(e)
      this.setData({ phone: phone.phone_number, error: '' })
    } catch (err) {
      if (err.kind === 'phone' && err.code === 'user_denied') return
      this.setData({ error: describe(err) })
    }
  },

  async endDevice(e) {
    await app.api.endSession(e.currentTarget.dataset.sid)
    return this.refresh()
  },

  async logout() {
    await app.api.logout()
    this.setData({ openid: '', devices: [], phone: '' })
  },

  async logoutAll() {
    await app.api.logout({ all: true })
    this.setData({ openid: '', devices: [], phone: '' })
  },

  async deleteAccount() {
    await app.api.deleteAccount()
    this.setData({ openid: '', devices: [], phone: '' })
  }
})

function describe(err) {
  if (err.kind === 'session_ended') return '登录已失效（' + err.reason + '）'
  if (err.kind === 'network') return '网络错误，请稍后再试'
  if (err.kind === 'throttled') return '操作太频繁，请 ' + err.retryAfter + ' 秒后再试'
  return '出错了：' + (err.code || err.kind)
}
