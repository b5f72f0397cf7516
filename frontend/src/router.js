import { createRouter, createWebHistory } from 'vue-router'
import { useSession } from './stores/session.js'

// Every path here is also answered with index.html by imhub/web/pages.py.
const routes = [
  { path: '/', redirect: '/chats' },
  { path: '/login', alias: '/user/login.shtml', component: () => import('./views/LoginView.vue'), meta: { guest: true } },
  {
    path: '/register', alias: '/user/register.shtml', component: () => import('./views/RegisterView.vue'),
    meta: { guest: true },
  },
  { path: '/chat/index.shtml', redirect: '/chats' },
  { path: '/chats', component: () => import('./views/ChatsView.vue'), meta: { tab: 'chats' } },
  // Under /chat/ because the server answers every /chat/<tail> with the app (imhub/web/pages.py).
  { path: '/chat/search', component: () => import('./views/SearchView.vue') },
  {
    path: '/chat/:conv', component: () => import('./views/ChatView.vue'),
    props: (route) => ({ conv: String(route.params.conv), seq: Number(route.query.seq) || 0 }),
  },
  { path: '/contacts', component: () => import('./views/ContactsView.vue'), meta: { tab: 'contacts' } },
  { path: '/groups', component: () => import('./views/GroupsView.vue'), meta: { tab: 'groups' } },
  { path: '/groups/:id', component: () => import('./views/GroupView.vue'), props: true },
  { path: '/groups/:id/settings', component: () => import('./views/GroupSettingsView.vue'), props: true },
  // Invite links: <public_url>/join/<token> (a logged-out visitor logs in and comes back).
  { path: '/join/:token', component: () => import('./views/JoinView.vue'), props: true },
  { path: '/me', component: () => import('./views/MeView.vue'), meta: { tab: 'me' } },
  { path: '/:rest(.*)*', redirect: '/chats' },
]

export const router = createRouter({ history: createWebHistory(), routes })

router.beforeEach((to) => {
  const session = useSession()
  if (!to.meta.guest && !session.loggedIn) return { path: '/login', query: to.fullPath !== '/chats' ? { next: to.fullPath } : {} }
  if (to.meta.guest && session.loggedIn) return '/chats'
  return true
})
