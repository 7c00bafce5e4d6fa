import { ref } from 'vue'

export type ThemePref = 'system' | 'light' | 'dark'
const KEY = 'docknap-theme'

function load(): ThemePref {
  try {
    const v = localStorage.getItem(KEY)
    return v === 'light' || v === 'dark' ? v : 'system'
  } catch {
    return 'system'
  }
}

export const themePref = ref<ThemePref>(load())

export function applyTheme(p: ThemePref = themePref.value): void {
  const root = document.documentElement
  if (p === 'system') delete root.dataset.theme
  else root.dataset.theme = p
}

export function setTheme(p: ThemePref): void {
  themePref.value = p
  try {
    if (p === 'system') localStorage.removeItem(KEY)
    else localStorage.setItem(KEY, p)
  } catch {
    // storage unavailable: still applies for this page
  }
  applyTheme(p)
}

export function cycleTheme(): void {
  const order: ThemePref[] = ['system', 'light', 'dark']
  setTheme(order[(order.indexOf(themePref.value) + 1) % order.length]!)
}
