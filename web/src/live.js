// live.js — the live feed from the broadcaster (schemas/websocket.md).
//
// One WebSocket per page load. live.subscribe({bots, pools}) sets what the
// current page wants (and sends it when connected); the server answers with
// a snapshot, then coalesced updates. Today's metrics land in the reactive
// store Alpine.store('live'): total, bots[id], pools[id], and flash["bot:1.clicks"]
// = true for a short while after a number changed. On close the client
// reconnects with exponential backoff (1 s doubling up to 30 s, with jitter)
// and subscribes again; the fresh snapshot is the resume. Except after close
// code 4001 (the session ended: logout elsewhere, expiry): then it asks the
// API once (GET /me), whose 401 logs the page out exactly as any API 401
// does (api.js's unauthorized handler → login page); only if the API still
// knows a session (a new login in another tab) does it reconnect.
import Alpine from 'alpinejs';
import { get, ApiError } from './api.js';

const FLASH_MS = 1600;
const CLOSE_SESSION_ENDED = 4001;   // schemas/websocket.md
const FIELDS = ['clicks', 'automated_clicks', 'starts', 'checkouts', 'purchases', 'revenue_cents'];

let ws = null;
let url = null;
let wanted = { bots: [], pools: [] };
let backoff = 1000;
let timer = null;
let stopped = true;
const flashTimers = new Map();

function store() { return Alpine.store('live'); }

function flash(key) {
  const s = store();
  s.flash[key] = true;
  clearTimeout(flashTimers.get(key));
  flashTimers.set(key, setTimeout(() => { delete s.flash[key]; flashTimers.delete(key); }, FLASH_MS));
}

// Merges metrics M into target[id] (or the total), flashing changed fields.
function merge(kind, id, m, isSnapshot) {
  if (!m || typeof m !== 'object') return;
  const s = store();
  let cur;
  if (kind === 'total') {
    cur = s.total || (s.total = {});
  } else {
    cur = s[kind][id] || (s[kind][id] = {});
  }
  const had = Object.keys(cur).length > 0;
  for (const f of FIELDS) {
    if (typeof m[f] !== 'number') continue;
    if (cur[f] !== m[f]) {
      // The first snapshot is not a change; later ones (resumes) are when a number moved.
      if (had || !isSnapshot) flash(`${kind === 'total' ? 'total' : kind.slice(0, -1) + ':' + id}.${f}`);
      cur[f] = m[f];
    }
  }
}

function onMessage(ev) {
  let msg;
  try { msg = JSON.parse(ev.data); } catch (e) { return; }
  if (!msg || typeof msg !== 'object') return;
  const s = store();
  if (msg.type === 'snapshot' || msg.type === 'update') {
    const snap = msg.type === 'snapshot';
    if (snap && msg.day && s.day && msg.day !== s.day) { s.total = {}; s.bots = {}; s.pools = {}; }
    if (msg.day) s.day = msg.day;
    if (typeof msg.seq === 'number') s.seq = msg.seq;
    if (msg.total) merge('total', null, msg.total, snap);
    for (const [id, m] of Object.entries(msg.bots || {})) merge('bots', id, m, snap);
    for (const [id, m] of Object.entries(msg.pools || {})) merge('pools', id, m, snap);
    if (snap) s.ready = true;
    s.updates++;
  } else if (msg.type === 'error') {
    if (msg.bot) s.errors['bot:' + msg.bot] = msg.error || 'error';
    if (msg.pool) s.errors['pool:' + msg.pool] = msg.error || 'error';
  }
}

function send() {
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ type: 'subscribe', bots: wanted.bots, pools: wanted.pools }));
  }
}

function connect() {
  clearTimeout(timer);
  timer = null;
  if (stopped || !url) return;
  store().status = 'connecting';
  let sock;
  try {
    sock = new WebSocket(url);
  } catch (e) {
    scheduleReconnect();
    return;
  }
  ws = sock;
  sock.onopen = () => {
    if (ws !== sock) return;
    backoff = 1000;
    store().status = 'open';
    store().connects++;
    send();
  };
  sock.onmessage = (ev) => { if (ws === sock) onMessage(ev); };
  sock.onclose = (ev) => {
    if (ws !== sock) return;
    ws = null;
    store().status = 'off';
    if (ev.code === CLOSE_SESSION_ENDED) sessionEnded();
    else scheduleReconnect();
  };
  sock.onerror = () => { /* onclose follows */ };
}

// The feed's session ended: no reconnect loop with a dead cookie. GET /me
// answers 401 and api.js's handler forgets the session and shows the login
// page (live.stop() runs there). Any other answer: reconnect as usual.
async function sessionEnded() {
  try {
    await get('/me');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
  }
  scheduleReconnect();
}

function scheduleReconnect() {
  if (stopped || timer) return;
  const delay = backoff * (0.75 + Math.random() * 0.5);
  backoff = Math.min(backoff * 2, 30000);
  timer = setTimeout(connect, delay);
}

// The broadcaster's URL: /api/v1/me's ws_url, else the same host on port 8090.
export function defaultWsUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.hostname}:8090/ws`;
}

export const live = {
  // start(wsUrl): connects (once); later calls only change the URL when it differs.
  start(wsUrl) {
    const u = wsUrl || defaultWsUrl();
    if (!stopped && u === url) return;
    stopped = false;
    url = u;
    if (ws) { const old = ws; ws = null; old.close(); }
    backoff = 1000;
    connect();
  },
  // stop(): closes the socket and forgets today's numbers (logout).
  stop() {
    stopped = true;
    clearTimeout(timer);
    timer = null;
    if (ws) { const old = ws; ws = null; old.close(); }
    const s = store();
    s.status = 'off'; s.total = {}; s.bots = {}; s.pools = {}; s.errors = {}; s.ready = false;
  },
  // subscribe({bots, pools}): what the page shows; replaces the subscription.
  subscribe({ bots = [], pools = [] } = {}) {
    wanted = { bots: bots.map(Number).filter((n) => n > 0), pools: pools.map(Number).filter((n) => n > 0) };
    send();
  },
};

export function liveStore() {
  return { status: 'off', seq: 0, day: null, ready: false, total: {}, bots: {}, pools: {},
    flash: {}, errors: {}, updates: 0, connects: 0 };
}
