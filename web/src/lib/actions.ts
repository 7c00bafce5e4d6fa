import type { Action } from './types'

/** The actions that make sense for a stack status or container state. */
export function actionsFor(stateOrStatus: string): Action[] {
  switch (stateOrStatus) {
    case 'running': return ['stop', 'restart', 'pause']
    case 'restarting': return ['stop', 'restart']
    case 'paused': return ['unpause', 'stop']
    case 'partial': return ['start', 'stop', 'restart', 'pause', 'unpause']
    case 'removing': return []
    default: return ['start'] // stopped, exited, created, dead
  }
}

export function isDestructive(a: Action): boolean {
  return a === 'stop'
}
