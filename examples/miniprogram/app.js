// One client for the whole app: require('wxsession') resolves to miniprogram_npm/wxsession/
// after DevTools' "Tools → Build npm".
const { createClient } = require('wxsession')
const { baseURL } = require('./config.js')

const REASONS = {
  replaced: '你已在本设备重新登录',
  revoked: '你已在其他设备上退出了本设备',
  logged_out_all: '你已退出所有设备',
  kicked: '你已被管理员下线',
  evicted: '登录设备过多，本设备已下线',
  banned: '账号已被封禁',
  account_deleted: '账号已注销'
}

App({
  api: createClient({ baseURL }),
  onLaunch() {
    this.api.onSessionEnded(({ reason }) => {
      // The client logs in again by itself, except after banned / account_deleted.
      const content = REASONS[reason]
      if (content) wx.showModal({ title: '登录状态已变化', content, showCancel: false })
    })
    return this.api.login().catch((err) => console.warn('login failed', err.kind, err.code || err.reason || err.message))
  }
})
