import { onBeforeUnmount, onMounted, ref, type Ref } from 'vue'

/**
 * The current time (ms), refreshed every `period` ms while the component is
 * mounted, so that relative times ("in 10 min") stay true on an open page.
 */
export function useNow(period = 30_000): Ref<number> {
  const now = ref(Date.now())
  let timer: ReturnType<typeof setInterval> | null = null
  onMounted(() => {
    timer = setInterval(() => { now.value = Date.now() }, period)
  })
  onBeforeUnmount(() => {
    if (timer) clearInterval(timer)
  })
  return now
}
