// A native mini-program in TypeScript (DevTools' "useCompilerPlugins": ["typescript"]).
import { createClient, Client, WxSessionError, DeviceSession, PhoneNumber } from 'wxsession'

const api: Client = createClient({ baseURL: 'https://abc123.execute-api.ap-east-1.amazonaws.com' })
App({ api })

interface Me {
  openid: string
  unionid: string
}

api.onSessionEnded(({ reason }) => {
  if (reason === 'replaced' || reason === 'revoked') wx.showModal({ title: '已在其他设备登录' })
})

Page({
  async onShow() {
    const res = await getApp<{ api: Client }>().api.request<Me>({ url: '/me' })
    if (res.statusCode === 200) {
      const openid: string = res.data.openid
      console.log(openid, res.header['content-type'])
    }
    const list: DeviceSession[] = await api.sessions()
    for (const s of list) if (!s.current) await api.endSession(s.sid)
  },
  async onGetPhoneNumber(e: { detail: { errMsg: string; code?: string } }) {
    try {
      const phone: PhoneNumber = await api.bindPhoneNumber(e)
      console.log(phone.pure_phone_number, phone.country_code)
    } catch (err) {
      if (err instanceof WxSessionError && err.kind === 'phone' && err.code === 'user_denied') return
      throw err
    }
  },
  async logout() {
    const { statusCode } = await api.logout({ all: true })
    console.log(statusCode)
  },
  async remove() {
    await api.deleteAccount()
    wx.reLaunch({ url: '/pages/index/index' })
  }
})

async function errors(): Promise<void> {
  try {
    await api.login()
  } catch (err) {
    if (!(err instanceof WxSessionError)) throw err
    switch (err.kind) {
      case 'login':
        console.log(err.statusCode, err.code, err.retryAfter, err.until)
        break
      case 'session_ended':
        console.log(err.reason)
        break
      case 'throttled':
        console.log(err.retryAfter)
        break
    }
  }
  const off: () => void = api.onSessionEnded(() => {})
  off()
  const s = api.session()
  if (s) console.log(s.session_id, s.openid, s.expires_at)
}
errors()

// Misuse the declarations must refuse:
// @ts-expect-error baseURL is required
createClient({})
// @ts-expect-error not a platform
createClient({ baseURL: 'https://x', platform: 'alipay' })
// @ts-expect-error url is required
api.request({ method: 'GET' })
// @ts-expect-error 'sold_out' is not an end reason
api.onSessionEnded(({ reason }) => reason === 'sold_out')
// @ts-expect-error 'bogus' is not an error kind
const k: WxSessionError['kind'] = 'bogus'
console.log(k)
