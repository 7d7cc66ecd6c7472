// Taro 3 (React or Vue): pass Taro itself.
import Taro from '@tarojs/taro'
import { createClient, Response } from 'wxsession'

export const api = createClient({ baseURL: 'https://api.example.com', platform: Taro, storageKey: 'myapp.session' })

export async function profile(): Promise<string | null> {
  const res: Response<{ nickname: string }> = await api.request({ url: '/me/profile' })
  return res.statusCode === 200 ? res.data.nickname : null
}

export async function saveProfile(nickname: string): Promise<number> {
  const res = await api.request({ url: '/me/profile', method: 'PUT', data: { nickname }, header: { 'x-trace': '1' } })
  return res.statusCode
}
