import { reactive } from 'vue'

export interface ConfirmRequest {
  title: string
  message: string
  confirmLabel: string
  danger: boolean
  /** When set, the dialog asks for a value (e.g. a new password). */
  input?: { label: string; type: 'text' | 'password'; minLength?: number }
}

interface ConfirmState {
  open: ConfirmRequest | null
  resolve: ((v: string | null) => void) | null
}

export const confirmState = reactive<ConfirmState>({ open: null, resolve: null })

/** Resolves to the entered value ('' without input) or null when cancelled. */
export function ask(req: Partial<ConfirmRequest> & { title: string }): Promise<string | null> {
  confirmState.resolve?.(null)
  return new Promise((resolve) => {
    confirmState.open = { message: '', confirmLabel: 'OK', danger: false, ...req }
    confirmState.resolve = resolve
  })
}

export async function confirmAction(req: Partial<ConfirmRequest> & { title: string }): Promise<boolean> {
  return (await ask(req)) !== null
}

export function settle(value: string | null): void {
  const r = confirmState.resolve
  confirmState.open = null
  confirmState.resolve = null
  r?.(value)
}
