// app.js — the dashboard's entry point: Alpine stores (session, route, i18n,
// live), the hash router, the session bootstrap (GET /api/v1/me) and the
// page components of pages.js. All of the dashboard's JavaScript is bundled
// from here into dist/app.js (the front's CSP allows no inline script).
import Alpine from 'alpinejs';
import { get, post, setUnauthorizedHandler, ApiError } from './api.js';
import { t, setLang, initialLang } from './i18n.js';
import { live, liveStore } from './live.js';
import * as fmt from './format.js';
import * as pages from './pages.js';

// ---- routes: #/path → page name (+ numeric id) ----------------------------------------
const ROUTES = [
  [/^\/login$/, 'login'],
  [/^\/$/, 'overview'],
  [/^\/bots$/, 'bots'],
  [/^\/bots\/(\d{1,18})$/, 'bot'],
  [/^\/pools$/, 'pools'],
  [/^\/pools\/(\d{1,18})$/, 'pool'],
  [/^\/utm$/, 'utm'],
  [/^\/leads$/, 'leads'],
  [/^\/payments$/, 'payments'],
  [/^\/pixels$/, 'pixels'],
  [/^\/spend$/, 'spend'],
  [/^\/dlq$/, 'dlq'],
];

export function parseHash(hash) {
  const h = (hash || '').replace(/^#/, '') || '/';
  const [path, qs] = h.split('?');
  const query = Object.fromEntries(new URLSearchParams(qs || ''));
  for (const [re, name] of ROUTES) {
    const m = re.exec(path);
    if (m) return { name, id: m[1] ? Number(m[1]) : null, query, path };
  }
  return { name: 'notfound', id: null, query, path };
}

export const NAV = [
  ['/', 'nav_overview'], ['/bots', 'nav_bots'], ['/pools', 'nav_pools'], ['/utm', 'nav_utm'],
  ['/leads', 'nav_leads'], ['/payments', 'nav_payments'], ['/spend', 'nav_spend'],
  ['/pixels', 'nav_pixels'], ['/dlq', 'nav_dlq'],
];

function go(path) {
  if (location.hash !== '#' + path) location.hash = '#' + path;
  else route();
}

let routeSeq = 0;
// Shows the page of location.hash. The page's component is made anew on
// every navigation (even #/bots/1 → #/bots/2): the route is cleared first.
function route() {
  const r = parseHash(location.hash);
  const session = Alpine.store('session');
  if (!session.ready) return;
  if (!session.user && r.name !== 'login') { go('/login'); return; }
  if (session.user && r.name === 'login') { go('/'); return; }
  Alpine.store('ui').menuOpen = false;
  const store = Alpine.store('route');
  const seq = ++routeSeq;
  store.name = '';
  setTimeout(() => {
    if (seq !== routeSeq) return;
    Object.assign(store, r);
    window.scrollTo(0, 0);
  }, 0);
}

// ---- session --------------------------------------------------------------------------
async function bootstrap() {
  const session = Alpine.store('session');
  session.failed = '';
  try {
    const me = await get('/me');
    setSession(me);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      session.failed = e instanceof ApiError && e.status === 0 ? t('error_network') : t('error_generic', e.message);
      return;
    }
    session.user = null;
  }
  session.ready = true;
  route();
}

// Keeps the user and CSRF token of ME (the answer of /me or /login); with
// startLive, connects the live feed (to ME's ws_url when it has one).
function setSession(me, startLive = true) {
  const session = Alpine.store('session');
  session.user = me.user || null;
  session.csrf = me.csrf || null;
  if (me.ws_url) session.ws_url = me.ws_url;
  if (session.user && startLive) live.start(session.ws_url);
}

function forget() {
  const session = Alpine.store('session');
  session.user = null;
  session.csrf = null;
  live.stop();
}

// ---- Alpine ---------------------------------------------------------------------------
document.addEventListener('alpine:init', () => {
  Alpine.store('i18n', { lang: 'pt' });
  Alpine.store('session', { ready: false, failed: '', user: null, csrf: null, ws_url: null });
  Alpine.store('route', { name: '', id: null, query: {}, path: '' });
  Alpine.store('ui', { menuOpen: false });
  Alpine.store('live', liveStore());
  Alpine.store('app', {
    // After POST /login: keeps the session, asks /me for the live feed's URL, goes to the overview.
    async loggedIn(r) {
      setSession(r, false);
      try { setSession(await get('/me')); } catch (e) { live.start(null); /* the login answer is enough */ }
      go('/');
    },
    async logout() {
      try { await post('/logout'); } catch (e) { /* the session is gone either way */ }
      forget();
      go('/login');
    },
    retry: bootstrap,
  });
  setLang(initialLang());

  Alpine.magic('t', () => t);
  Alpine.magic('fmt', () => fmt);
  Alpine.data('shell', () => ({
    nav: NAV,
    isActive(path) {
      const cur = Alpine.store('route').path || '/';
      return path === '/' ? cur === '/' : cur === path || cur.startsWith(path + '/');
    },
    toggleLang() { setLang(Alpine.store('i18n').lang === 'en' ? 'pt' : 'en'); },
    liveLabel() {
      const s = Alpine.store('live').status;
      return s === 'open' ? t('live') : s === 'connecting' ? t('live_connecting') : t('live_off');
    },
  }));
  for (const [name, fn] of Object.entries(pages)) {
    if (name.endsWith('Page')) Alpine.data(name, fn);
  }
});

setUnauthorizedHandler(() => {
  if (!Alpine.store('session').user) return;
  forget();
  go('/login');
});
window.addEventListener('hashchange', route);
window.Alpine = Alpine;
Alpine.start();
bootstrap();
