// Type declarations of wxsession's mini-program client (lib/index.js).
// test/package.test.js checks that these names match what lib/index.js exports, and
// test/types/ type-checks sample apps for native WeChat, uni-app and Taro against them.

/** Why a session ended, as GET /session reports it; 'unknown' when the server no longer knows the id. */
export type EndReason =
  | 'logged_out'
  | 'logged_out_all'
  | 'replaced'
  | 'evicted'
  | 'revoked'
  | 'kicked'
  | 'banned'
  | 'account_deleted'
  | 'idle_timeout'
  | 'expired'
  | 'unknown'

/** What failed; see WxSessionError. */
export type ErrorKind =
  | 'network'
  | 'wx_login'
  | 'login'
  | 'throttled'
  | 'storage'
  | 'session_ended'
  | 'session_check'
  | 'http'
  | 'phone'

/** The platform's API object: WeChat's `wx`, uni-app's `uni`, or Taro (`import Taro from '@tarojs/taro'`). */
export interface PlatformAPI {
  login(options: any): any
  request(options: any): any
  getStorageSync(key: string): any
  setStorageSync(key: string, value: any): void
  removeStorageSync(key: string): void
  getDeviceInfo?(): any
  getSystemInfoSync?(): any
}

export interface ClientOptions {
  /** The API's base URL, e.g. 'https://abc123.execute-api.ap-east-1.amazonaws.com' (a stage path may follow). The session is sent to this origin only. */
  baseURL: string
  /** 'wx', 'uni', 'taro' (the global of that name) or the API object itself; detected (uni, then wx, then Taro) when absent. */
  platform?: 'wx' | 'uni' | 'taro' | PlatformAPI
  /** Storage key of the session; the device id is kept under `${storageKey}.device_id`. Default 'wxsession'. */
  storageKey?: string
}

/** wx.request's options (url relative to baseURL, or absolute). */
export interface RequestOptions {
  url: string
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'HEAD' | 'OPTIONS' | 'TRACE' | 'CONNECT' | Lowercase<'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'HEAD' | 'OPTIONS'>
  data?: string | object | ArrayBuffer
  header?: Record<string, string>
  timeout?: number
  dataType?: string
  responseType?: 'text' | 'arraybuffer'
  [option: string]: unknown
}

export interface Response<T = any> {
  statusCode: number
  data: T
  header: Record<string, string>
}

/** The session the client holds. */
export interface Session {
  /** The bearer id (43 characters). Send it yourself only to your API (e.g. wx.uploadFile). */
  session_id: string
  openid: string
  /** The server's RFC 3339 expiry, for display; the client decides expiry from expires_in. */
  expires_at: string
}

/** One logged-in device of the user (GET /me/sessions). */
export interface DeviceSession {
  /** Names the session for endSession(); cannot authenticate. */
  sid: string
  current: boolean
  created_at: string
  last_active_at?: string
  expires_at: string
  device_id?: string
  device?: { platform?: string; brand?: string; model?: string; system?: string }
  source_ip?: string
  [field: string]: unknown
}

export interface PhoneNumber {
  /** With the country code for numbers outside China, e.g. '+1 2025550123'. */
  phone_number: string
  pure_phone_number: string
  country_code: string
}

/** The getPhoneNumber button's event (or its detail). */
export interface PhoneNumberEvent {
  detail?: { errMsg?: string; code?: string; encryptedData?: string; iv?: string; cloudID?: string }
  errMsg?: string
  code?: string
  encryptedData?: string
  iv?: string
}

export interface SessionEndedEvent {
  reason: EndReason
}

export interface Client {
  /** Starts a new session (wx.login + POST /login); concurrent callers share one. Lifts the stop after 'banned' / 'account_deleted'. */
  login(): Promise<Session>
  /** wx.request with the session; resolves for every HTTP status. */
  request<T = any>(options: RequestOptions): Promise<Response<T>>
  /** Ends this session, or with all: true every session of the user, and forgets it. */
  logout(options?: { all?: boolean }): Promise<{ statusCode: number }>
  /** The user's sessions, one per device (every page of GET /me/sessions). */
  sessions(): Promise<DeviceSession[]>
  /** Ends one of the user's sessions by its sid. */
  endSession(sid: string): Promise<void>
  /** Binds the phone number from a getPhoneNumber button's event. */
  bindPhoneNumber(event: PhoneNumberEvent): Promise<PhoneNumber>
  /** Deletes the user (DELETE /me); the client then stays logged out until login(). */
  deleteAccount(): Promise<void>
  /** Calls fn when the server reports that this device's session ended; returns an unsubscribe function. */
  onSessionEnded(fn: (event: SessionEndedEvent) => void): () => void
  /** The stored session, or null when there is none (or it reached its lifetime). */
  session(): Session | null
}

export declare class WxSessionError extends Error {
  name: 'WxSessionError'
  kind: ErrorKind
  /** The HTTP status, for 'login', 'http', 'session_check' and 'session_ended'. */
  statusCode?: number
  /** The server's error code ('invalid_code', 'rate_limited', 'user_banned', 'phone_lookup_limited', …) or, for 'phone', 'user_denied' | 'no_code' | 'session_key_stale'. */
  code?: string
  /** Why the session ended ('session_ended', and a login that followed an ended session). */
  reason?: EndReason
  /** Seconds to wait before trying again ('throttled', and 429/503 answers). */
  retryAfter?: number
  /** End of a ban (RFC 3339), when the server gave one. */
  until?: string
  /** The platform's own error object ('network', 'wx_login', 'storage'). */
  cause?: unknown
  constructor(kind: ErrorKind, message: string, props?: object)
}

export declare function createClient(options: ClientOptions): Client

export declare const version: string
