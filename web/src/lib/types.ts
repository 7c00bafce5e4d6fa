import type { components } from './api-schema'

/** The server's schemas (generated from /api/openapi.json into api-schema.ts). */
type Schemas = components['schemas']

export type Role = Schemas['Role']
/** `run`: start a container and wait for its exit (a job). */
export type Action = Schemas['Action']
/** Swarm services and Swarm stacks (a stack deployed with `docker stack deploy`) live on a manager host. */
/** `group`: every stack of the hosts in a group (schedules only; its host is `*`). */
/** `sequence`: a schedule's ordered steps (its host is `*`). */
export type TargetType = Schemas['TargetType']
/** What has an action route of its own (a group is acted on stack by stack). */
export type ActionTargetType = Exclude<TargetType, 'group' | 'sequence'>
export type StackStatus = Schemas['StackStatus']

export const ACTIONS: Action[] = ['start', 'stop', 'restart', 'pause', 'unpause']
export const ROLES: Role[] = ['viewer', 'operator', 'admin']

export interface User {
  id: number
  username: string
  role: Role
  created_at?: string
  /** From /api/auth/me: the server's zone for new schedules (DOCKNAP_TZ). */
  default_timezone?: string
  /** Two-factor sign-in (TOTP) is on (from /api/auth/me and /api/users). */
  totp_enabled?: boolean
  /** From /api/auth/me: DOCKNAP_REQUIRE_2FA applies and it is not set up yet. */
  totp_required_setup?: boolean
}

export type TotpSetup = Schemas['TotpSetup']

/** GET /api/auth/providers: the sign-in methods the server offers. */
export interface Providers {
  password: boolean
  oidc: { name: string; login_url: string } | null
}

export interface LoginResponse {
  token: string
  expires_at: string
  user: User
}

/** Docker's container state (`stopping` from newer engines, `unknown` when the engine gave none). */
export type ContainerState = Schemas['ContainerState']

export interface Container {
  id: string
  name: string
  image: string
  state: ContainerState
  status: string
  labels: Record<string, string>
  stack: string | null
  service: string | null
  created: string
  /** The Docker host (many-host servers); absent means `local`. */
  host?: string
  /** Its health check's verdict; null without one (or while stopped). */
  health?: ContainerHealth | null
}

export type ContainerHealth = Schemas['ContainerHealth']

export interface Stack {
  name: string
  status: StackStatus
  /** Its members' worst health-check verdict; null when none has a check. */
  health?: ContainerHealth | null
  containers: Container[]
  services: string[]
  host?: string
}

export type ContainerResult = Schemas['ContainerResult']

export interface ActionResult {
  target_type: TargetType
  target_id: string
  action: Action
  ok: boolean
  results: ContainerResult[]
  host?: string
  /** A run's exit code (null: it did not exit), duration and last log lines. */
  exit_code?: number | null
  duration_ms?: number
  log_tail?: string[]
  /** A sequence's result per step. */
  steps?: ActionResult[]
}

export type OnFailure = Schemas['OnFailure']

/** A step of a sequence finished (live, on /api/events). */
export interface SequenceStepEvent {
  schedule_id: number
  step: number
  steps: number
  ok: boolean
  message: string
}

export interface Step {
  host?: string
  target_type: ActionTargetType
  target_id: string
  action: Action
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
  /** Exactly one of cron and at (a one-time schedule). */
  cron: string | null
  at?: string | null
  timezone: string
  enabled: boolean
  /** A run's time limit, e.g. "30m". */
  timeout?: string
  steps?: Step[]
  on_failure?: OnFailure
  created_at: string
  updated_at: string
  next_run: string | null
  last_run: LastRun | null
  /** Absent on servers without hosts: `local`. */
  host?: string
  /** Absent on servers without conflict detection. */
  conflicts?: Conflict[]
  /** `label`: defined by container labels, read-only (absent on older servers: `api`). */
  source?: 'api' | 'label'
  /** For labels: the compose service(s) or standalone container that define it. */
  origin?: string | null
  /** For labels: what is wrong with them (the schedule never runs). */
  error?: string | null
}

export interface ScheduleInput {
  host?: string
  target_type?: TargetType
  target_id?: string
  action?: Action
  cron?: string
  at?: string
  timezone?: string
  enabled?: boolean
  timeout?: string
  steps?: Step[]
  on_failure?: OnFailure
}

export type Upcoming = Schemas['Upcoming']

export interface AuditDetails {
  results?: ContainerResult[]
  duration_ms?: number
  schedule_id?: number
  trigger?: 'manual' | 'scheduled' | 'test_run'
  /** A run's exit code and last log lines. */
  exit_code?: number | null
  log_tail?: string[]
  /** A sequence's result per step. */
  steps?: ActionResult[]
  [k: string]: unknown
}

export interface AuditEntry {
  id: number
  timestamp: string
  actor: string
  action: string
  /** The Docker host acted on; null for sign-ins, user changes and the like (absent on older servers). */
  host?: string | null
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
  docker: 'ok' | 'unreachable' | 'connecting'
  hosts?: Record<string, HostStatus>
  version: string
}

export interface ScheduleRunEvent {
  schedule_id: number
  host?: string
  target_type: TargetType
  target_id: string
  action: Action
  at: string
  ok: boolean
  message: string
}

// ---- windows ("sleep mode") ---------------------------------------------------

export type Desired = Schemas['Desired']

export interface Conflict {
  kind: string
  with_type: string
  with_id: string | number
  at: string | null
  message: string
}

export interface WindowState {
  desired: Desired
  since: string | null
  next_change: string | null
  reason: string | null
}

export interface WindowOverride {
  desired: Desired
  until: string
  by: string
  reason: string | null
}

export interface Window {
  id: number
  host: string
  target_type: TargetType
  target_id: string
  spec: string
  timezone: string
  /** `pause` is refused for Swarm targets (services have no paused state). */
  down_action: 'stop' | 'pause'
  enforce: 'both' | 'down_only'
  grace: string
  enabled: boolean
  source: 'api' | 'label'
  /** For labels: the compose service(s) or standalone container that define it. */
  origin?: string | null
  /** For labels: what is wrong with them (the window is not enforced). */
  error?: string | null
  state: WindowState
  override: WindowOverride | null
  conflicts: Conflict[]
  created_at: string
  updated_at: string
}

export interface WindowInput {
  host?: string
  target_type?: TargetType
  target_id?: string
  spec?: string
  timezone?: string
  down_action?: 'stop' | 'pause'
  enforce?: 'both' | 'down_only'
  grace?: string
  enabled?: boolean
}

export interface Transition {
  at: string
  desired: Desired
}

export interface WindowPreview {
  states: Transition[]
  transitions: Transition[]
}

export interface WindowPreviewRequest {
  spec: string
  timezone?: string
  at?: string[]
  after?: string
  count?: number
}

export interface BulkTarget {
  target_type: TargetType
  target_id: string
  host?: string
}

export type BulkItemResult = Partial<ActionResult> & { target_type: TargetType; target_id: string; error?: string; host?: string }

export interface BulkResponse {
  results: BulkItemResult[]
}

// ---- hosts and Swarm ------------------------------------------------------------

export type HostStatus = Schemas['HostStatus']

export type HostView = Schemas['HostView']

/** PEM strings. */
export interface TlsMaterial {
  ca: string
  cert: string
  key: string
}

export interface HostInput {
  name: string
  url: string
  group?: string
  tls?: TlsMaterial
}

/** `tls: null` removes the material; leaving it out keeps it. */
export interface HostPatch {
  url?: string
  group?: string | null
  tls?: TlsMaterial | null
}

export interface Service {
  host: string
  id: string
  name: string
  stack: string | null
  mode: 'replicated' | 'global'
  /** Tasks running now. */
  replicas: number
  /** What the spec asks for (0 after a DockNap stop). */
  desired_replicas: number
  /** The count a DockNap stop remembered, to start back to. */
  saved_replicas: number | null
}

export type ApiKey = Schemas['ApiKey']

/** POST /api/tokens: the key, with its secret shown this once. */
export interface CreatedApiKey extends ApiKey {
  token: string
}

// ---- notifications (admin)

export type NotifyEvent =
  | 'action.failed' | 'action.succeeded' | 'run.missed' | 'window.changed'
  | 'host.unreachable' | 'host.recovered' | 'container.unhealthy' | 'container.died'

/** A channel; `url` shows only its scheme and host (the rest is secret). */
export interface NotifyChannel {
  id: number
  name: string
  url: string
  events: NotifyEvent[]
  enabled: boolean
  source: 'env' | 'api'
  has_secret: boolean
}

/** `url` and `secret` are write-only: left out of an update, they are kept. */
export interface NotifyChannelInput {
  name?: string
  url?: string
  secret?: string | null
  events?: NotifyEvent[]
  enabled?: boolean
}

export interface NotifyDelivery {
  id: number
  /** An event, or `test`. */
  event: string
  at: string
  /** `null` while attempts remain. */
  ok: boolean | null
  attempts: number
  status: number | null
  error: string | null
  count: number
  channel_id: number
}

export interface NotifyTestResult {
  ok: boolean
  status: number | null
  error: string | null
}
