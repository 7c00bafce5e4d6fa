import { createRouter, createWebHistory, type RouteLocationNormalized } from 'vue-router'
import { checkAuth, setSessionLostHandler, state } from './lib/store'
import DashboardView from './views/DashboardView.vue'
import LoginView from './views/LoginView.vue'
import StacksView from './views/StacksView.vue'
import StackView from './views/StackView.vue'
import SchedulesView from './views/SchedulesView.vue'
import ScheduleEditView from './views/ScheduleEditView.vue'
import AuditView from './views/AuditView.vue'
import WindowsView from './views/WindowsView.vue'
import WindowEditView from './views/WindowEditView.vue'
import WindowView from './views/WindowView.vue'
import UsersView from './views/UsersView.vue'
import HostsView from './views/HostsView.vue'
import AccountView from './views/AccountView.vue'
import LogsView from './views/LogsView.vue'
import NotificationsView from './views/NotificationsView.vue'
import BackupView from './views/BackupView.vue'
import NotFoundView from './views/NotFoundView.vue'

declare module 'vue-router' {
  interface RouteMeta {
    public?: boolean
    role?: 'operator' | 'admin'
    title?: string
  }
}

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/login', name: 'login', component: LoginView, meta: { public: true, title: 'Sign in' } },
    { path: '/', name: 'dashboard', component: DashboardView, meta: { title: 'Dashboard' } },
    { path: '/stacks', name: 'stacks', component: StacksView, meta: { title: 'Stacks' } },
    { path: '/stacks/:name', name: 'stack', component: StackView, meta: { title: 'Stack' } },
    { path: '/schedules', name: 'schedules', component: SchedulesView, meta: { title: 'Schedules' } },
    { path: '/schedules/new', name: 'schedule-new', component: ScheduleEditView, meta: { role: 'operator', title: 'New schedule' } },
    { path: '/schedules/:id/edit', name: 'schedule-edit', component: ScheduleEditView, meta: { role: 'operator', title: 'Edit schedule' } },
    { path: '/windows', name: 'windows', component: WindowsView, meta: { title: 'Windows' } },
    { path: '/windows/new', name: 'window-new', component: WindowEditView, meta: { role: 'operator', title: 'New window' } },
    { path: '/windows/:id(\\d+)', name: 'window', component: WindowView, meta: { title: 'Window' } },
    { path: '/windows/:id(\\d+)/edit', name: 'window-edit', component: WindowEditView, meta: { role: 'operator', title: 'Edit window' } },
    { path: '/audit', name: 'audit', component: AuditView, meta: { title: 'Audit log' } },
    { path: '/users', name: 'users', component: UsersView, meta: { role: 'admin', title: 'Users' } },
    { path: '/hosts', name: 'hosts', component: HostsView, meta: { role: 'admin', title: 'Hosts' } },
    { path: '/logs/:kind(containers|stacks)/:name', name: 'logs', component: LogsView, meta: { role: 'operator', title: 'Log' } },
    { path: '/notifications', name: 'notifications', component: NotificationsView, meta: { role: 'admin', title: 'Notifications' } },
    { path: '/backup', name: 'backup', component: BackupView, meta: { role: 'admin', title: 'Backup' } },
    { path: '/account', name: 'account', component: AccountView, meta: { title: 'Account' } },
    { path: '/:rest(.*)*', name: 'not-found', component: NotFoundView, meta: { title: 'Not found' } },
  ],
  scrollBehavior: () => ({ top: 0 }),
})

let authOnce: Promise<void> | null = null

router.beforeEach(async (to: RouteLocationNormalized) => {
  if (!state.authChecked) {
    authOnce ??= checkAuth()
    await authOnce
  }
  if (to.meta.public) {
    if (state.user && to.name === 'login') return typeof to.query.next === 'string' ? to.query.next : '/'
    return true
  }
  if (!state.user) return { name: 'login', query: to.fullPath !== '/' ? { next: to.fullPath } : {} }
  if (state.user.totp_required_setup && to.name !== 'account') return { name: 'account' }
  const role = state.user.role
  if (to.meta.role === 'admin' && role !== 'admin') return { name: 'dashboard' }
  if (to.meta.role === 'operator' && role === 'viewer') return { name: 'dashboard' }
  return true
})

router.afterEach((to) => {
  document.title = to.meta.title ? `${to.meta.title} · DockNap` : 'DockNap'
})

setSessionLostHandler(() => {
  const here = router.currentRoute.value
  if (here.name !== 'login') void router.push({ name: 'login', query: { next: here.fullPath } })
})
