// The little of each platform's own typings the sample apps need (miniprogram-api-typings,
// @dcloudio/types and @tarojs/taro are not installed: the package must not need them).
interface PlatformObject {
  login(options: any): any
  request(options: any): any
  getStorageSync(key: string): any
  setStorageSync(key: string, value: any): void
  removeStorageSync(key: string): void
  showModal(options: { title: string; content?: string }): void
  reLaunch(options: { url: string }): void
}
declare const console: { log(...args: unknown[]): void }
declare const wx: PlatformObject
declare const uni: PlatformObject
declare function App<T extends object>(app: T): void
declare function Page(page: object): void
declare function getApp<T>(): T
declare module '@tarojs/taro' {
  const Taro: PlatformObject
  export default Taro
}
