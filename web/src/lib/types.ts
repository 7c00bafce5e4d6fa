export type Role = 'viewer' | 'operator' | 'admin'
export type Action = 'start' | 'stop' | 'restart' | 'pause' | 'unpause'
export type TargetType = 'stack' | 'container'
export type StackStatus = 'running' | 'stopped' | 'paused' | 'partial'

export const ACTIONS: Action[] = ['start', 'stop', 'restart', 'pause', 'unpause']
export const ROLES: Role[] = ['viewer', 'operator', 'admin']

export interface User {
  id: number
  username: string
  role: Role
  created_at?: string
  /** From /api/auth/me: the server's zone for new schedules (DOCKNAP_TZ). */
  default_timezone?: string
}

export interface LoginResponse {
  token: string
  expires_at: string
  user: User
}

export interface Container {
  id: string
  name: string
  image: string
  state: string
  status: string
  labels: Record<string, string>
  stack: string | null
  service: string | null
  created: string
}

export interface Stack {
  name: string
  status: StackStatus
  containers: Container[]
  services: string[]
}

export interface ContainerResult {
  container: string
  ok: boolean
  error: string | null
}

export interface ActionResult {
  target_type: TargetType
  target_id: string
  action: Action
  ok: boolean
  results: ContainerResult[]
}

export interface LastRun {
  at: string
  ok: boolean
  message: string
}

export interface Schedule {
  id: number
  target_type: TargetType
  target_id: string
  action: Action
  cron: string
  timezone: string
  enabled: boolean
  created_at: string
  updated_at: string
  next_run: string | null
  last_run: LastRun | null
}

export interface ScheduleInput {
  target_type?: TargetType
  target_id?: string
  action?: Action
  cron?: string
  timezone?: string
  enabled?: boolean
}

export interface Upcoming {
  schedule_id: number
  target_type: TargetType
  target_id: string
  action: Action
  at: string
}

export interface AuditDetails {
  results?: ContainerResult[]
  duration_ms?: number
  schedule_id?: number
  trigger?: 'manual' | 'scheduled' | 'test_run'
  [k: string]: unknown
}

export interface AuditEntry {
  id: number
  timestamp: string
  actor: string
  action: string
  target_type: string | null
  target_id: string | null
  ok: boolean
  message: string | null
  details: AuditDetails | null
}

export interface AuditPage {
  entries: AuditEntry[]
  next_before: number | null
}

export interface AuditQuery {
  limit?: number
  before?: number | null
  actor?: string
  target_type?: string
  target_id?: string
  ok?: boolean
}

export interface Health {
  status: string
  docker: 'ok' | 'unreachable'
  version: string
}

export interface ScheduleRunEvent {
  schedule_id: number
  target_type: TargetType
  target_id: string
  action: Action
  at: string
  ok: boolean
  message: string
}
