// uni-app (Vue 3, <script setup lang="ts"> or a plain module): the client finds the global uni.
import { createClient } from 'wxsession'

export const api = createClient({ baseURL: 'https://api.example.com/prod', platform: 'uni' })

export async function loadOrders(): Promise<Array<{ id: string }>> {
  const res = await api.request<{ orders: Array<{ id: string }> }>({ url: '/orders', method: 'GET', data: { page: 1 } })
  return res.statusCode === 200 ? res.data.orders : []
}

api.onSessionEnded(({ reason }) => {
  if (reason === 'banned') uni.reLaunch({ url: '/pages/blocked/blocked' })
})

export const auto = createClient({ baseURL: 'https://api.example.com', platform: uni })
