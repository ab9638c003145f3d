// pages.js — one Alpine component per page (registered by app.js). Each
// loads what it shows from the API in init(), keeps state 'loading' | 'ok' |
// 'notfound' | 'error', and the live pages (overview, bot, pool) read today's
// numbers from Alpine.store('live') over the API's.
import Alpine from 'alpinejs';
import { get, post, put, patch, ApiError } from './api.js';
import { t } from './i18n.js';
import { live } from './live.js';
import * as fmt from './format.js';
import * as chart from './hourly-chart.js';

const COUNTS = ['clicks', 'automated_clicks', 'starts', 'checkouts', 'purchases', 'revenue_cents'];

export function errText(e) {
  if (e instanceof ApiError && e.status === 0) return t('error_network');
  return t('error_generic', e && e.message ? e.message : String(e));
}

// The metrics to show: API's METRICS with today's live counts LIVE laid over
// (when given), profit and ROI recomputed from them.
function withLive(metrics, liveM) {
  const m = { ...(metrics || {}) };
  if (liveM && Object.keys(liveM).length) {
    for (const f of COUNTS) if (typeof liveM[f] === 'number') m[f] = liveM[f];
    m.profit_cents = fmt.profit(m.revenue_cents, m.spend_cents);
    m.roi = fmt.roi(m.revenue_cents, m.spend_cents);
  }
  return m;
}

// Funnel rows from counts (rate = count / previous step's count).
function funnelFrom(m) {
  const steps = [['click', m.clicks], ['start', m.starts], ['checkout', m.checkouts], ['purchase', m.purchases]];
  return {
    steps: steps.map(([step, count], i) => ({ step, count: count || 0, rate: i ? fmt.rate(count, steps[i - 1][1]) : null })),
    overall_rate: fmt.rate(m.purchases, m.clicks),
  };
}

// The range switch shared by overview, UTM and spend: today | yesterday | 7d | 30d | custom.
function rangeState() {
  return {
    range: 'today',
    from: '',
    to: '',
    ranges: ['today', 'yesterday', '7d', '30d', 'custom'],
    rangeQuery() {
      return this.range === 'custom' ? { range: 'custom', from: this.from, to: this.to } : { range: this.range };
    },
    setRange(r) {
      this.range = r;
      if (r === 'custom') {
        if (!this.to) this.to = fmt.todayLocal();
        if (!this.from) this.from = this.to;
        return;   // waits for "apply"
      }
      this.load();
    },
  };
}

// Shared helpers every page mixes in.
function base() {
  return {
    state: 'loading',
    error: '',
    notice: '',
    fail(e) {
      if (e instanceof ApiError && e.status === 404) { this.state = 'notfound'; return; }
      if (e instanceof ApiError && e.status === 401) return;   // api.js went to the login page
      this.error = errText(e);
      this.state = 'error';
    },
    say(msg) {
      this.notice = msg;
      setTimeout(() => { if (this.notice === msg) this.notice = ''; }, 3000);
    },
  };
}

// ---------------------------------------------------------------------------

export function loginPage() {
  return {
    ...base(),
    state: 'ok',
    email: '',
    password: '',
    busy: false,
    async submit() {
      this.error = '';
      this.busy = true;
      try {
        const r = await post('/login', { email: this.email, password: this.password });
        this.password = '';
        await Alpine.store('app').loggedIn(r);
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) this.error = t('login_wrong');
        else if (e instanceof ApiError && e.status === 429) this.error = t('login_too_many', e.retryAfter || 60);
        else this.error = errText(e);
      } finally {
        this.busy = false;
      }
    },
  };
}

export function overviewPage() {
  return {
    ...base(),
    ...rangeState(),
    metrics: {},
    funnelApi: null,
    hourly: null,
    chartDaily: false,
    byBot: [],
    byPool: [],
    shownRange: null,
    timer: null,
    init() {
      live.subscribe({});
      this.load();
      this.timer = setInterval(() => { if (this.range === 'today' && this.state === 'ok') this.load(true); }, 60000);
      this.$watch('$store.i18n.lang', () => this.drawChart());   // the legend's words
    },
    destroy() {
      clearInterval(this.timer);
      if (this.$refs.chart) chart.destroy(this.$refs.chart);
    },
    isLive() {
      const L = Alpine.store('live');
      return this.range === 'today' && L.ready && (!this.shownRange || L.day === this.shownRange.to);
    },
    get m() { return withLive(this.metrics, this.isLive() ? Alpine.store('live').total : null); },
    get funnel() { return this.isLive() || !this.funnelApi ? funnelFrom(this.m) : this.funnelApi; },
    flashing(field) { return this.isLive() && !!Alpine.store('live').flash['total.' + field]; },
    async load(quiet) {
      if (!quiet) this.state = 'loading';
      const q = this.rangeQuery();
      try {
        const [s, f, h, b, p] = await Promise.all([
          get('/summary', q), get('/funnel', q), get(chart.isDaily(q) ? '/daily' : '/hourly', q),
          get('/by-bot', q), get('/by-pool', q)]);
        this.metrics = s.metrics || {};
        this.shownRange = s.range || null;
        this.funnelApi = f;
        this.hourly = h;
        this.chartDaily = chart.isDaily(q);   // h is GET /daily's answer (ranges over 31 days)
        this.byBot = b.rows || [];
        this.byPool = p.rows || [];
        this.state = 'ok';
        this.$nextTick(() => this.drawChart());
      } catch (e) {
        this.fail(e);
      }
    },
    drawChart() {
      const el = this.$refs.chart;
      if (!el || !this.hourly) return;
      const labels = { when: t('when'), perHour: t('chart_revenue_hour'), perDay: t('chart_revenue_day'),
        cumRevenue: t('chart_revenue_cum'), cumSpend: t('chart_spend_cum') };
      if (this.chartDaily) chart.render(el, chart.dailyData(this.hourly.range, this.hourly.rows), labels, true);
      else chart.render(el, chart.chartData(this.hourly.range, this.hourly.rows, this.hourly.spend_by_day), labels);
    },
  };
}

// The bot page (#/bots/:id): today's live numbers, the bot's pools and offers.
export function botPage() {
  return {
    ...base(),
    id: 0,
    bot: null,
    pools: [],
    offers: [],
    metrics: {},
    offerForm: null,
    init() {
      this.id = Alpine.store('route').id;
      live.subscribe({ bots: [this.id] });
      this.load();
    },
    get m() { return withLive(this.metrics, Alpine.store('live').bots[this.id]); },
    get funnel() { return funnelFrom(this.m); },
    flashing(field) { return !!Alpine.store('live').flash[`bot:${this.id}.${field}`]; },
    async load() {
      try {
        const r = await get(`/bots/${this.id}`);
        this.bot = r.bot || r;
        this.pools = r.pools || [];
        const [s, o] = await Promise.all([get('/summary', { range: 'today', bot: this.id }), get(`/bots/${this.id}/offers`)]);
        this.metrics = s.metrics || {};
        this.offers = o.rows || o.items || r.offers || [];
        this.state = 'ok';
      } catch (e) {
        this.fail(e);
      }
    },
    async toggle() {
      try {
        await patch(`/bots/${this.id}`, { enabled: !this.bot.enabled });
        this.bot.enabled = !this.bot.enabled;
      } catch (e) { this.error = errText(e); }
    },
    newOffer() {
      this.offerForm = { id: 0, name: '', price: '', welcome_html: '', mode: 'chat', deliver_chat_id: '', deliver_text: '', error: '' };
    },
    editOffer(o) {
      this.offerForm = { id: o.id, name: o.name, price: fmt.centsToReais(o.price_cents), welcome_html: o.welcome_html || '',
        mode: o.deliver_text ? 'text' : 'chat', deliver_chat_id: o.deliver_chat_id ?? '', deliver_text: o.deliver_text || '', error: '' };
    },
    async saveOffer() {
      const f = this.offerForm;
      const cents = fmt.reaisToCents(f.price);
      if (!Number.isFinite(cents) || cents <= 0) { f.error = t('bad_price'); return; }
      const body = { name: f.name.trim(), price_cents: cents, welcome_html: f.welcome_html.trim() || null };
      if (f.mode === 'text') { body.deliver_text = f.deliver_text; body.deliver_chat_id = null; } else {
        body.deliver_chat_id = Number(f.deliver_chat_id); body.deliver_text = null;
      }
      try {
        if (f.id) await patch(`/offers/${f.id}`, body);
        else {
          if (!body.welcome_html) delete body.welcome_html;
          if (f.mode === 'text') delete body.deliver_chat_id; else delete body.deliver_text;
          await post(`/bots/${this.id}/offers`, body);
        }
        this.offerForm = null;
        const o = await get(`/bots/${this.id}/offers`);
        this.offers = o.rows || o.items || [];
        this.say(t('saved'));
      } catch (e) { f.error = errText(e); }
    },
    async toggleOffer(o) {
      try {
        await patch(`/offers/${o.id}`, { enabled: !o.enabled });
        o.enabled = !o.enabled;
      } catch (e) { this.error = errText(e); }
    },
  };
}

// The pool page (#/pools/:id): today's live numbers, settings, manual spend.
export function poolPage() {
  return {
    ...base(),
    id: 0,
    pool: null,
    metrics: {},
    allBots: [],
    pixels: [],
    form: null,
    spendForm: { day: '', amount: '', error: '' },
    init() {
      this.id = Alpine.store('route').id;
      live.subscribe({ pools: [this.id] });
      this.spendForm.day = fmt.todayLocal();
      this.load();
    },
    get m() { return withLive(this.metrics, Alpine.store('live').pools[this.id]); },
    get funnel() { return funnelFrom(this.m); },
    flashing(field) { return !!Alpine.store('live').flash[`pool:${this.id}.${field}`]; },
    botName(id) { return (this.allBots.find((b) => Number(b.id) === Number(id)) || {}).username || `#${id}`; },
    pixelName(id) { const p = this.pixels.find((x) => Number(x.id) === Number(id)); return p ? p.pixel_id : (id ?? '—'); },
    async load() {
      try {
        const r = await get(`/pools/${this.id}`);
        this.pool = r.pool || r;
        const [s, b, p] = await Promise.all([get('/summary', { range: 'today', pool: this.id }), get('/bots'), get('/pixels')]);
        this.metrics = s.metrics || {};
        this.allBots = b.rows || [];
        this.pixels = p.rows || [];
        this.resetForm();
        this.state = 'ok';
      } catch (e) {
        this.fail(e);
      }
    },
    resetForm() {
      const weights = {};
      for (const b of this.pool.bots || []) weights[b.bot_id] = b.weight || 1;
      this.form = { enabled: !!this.pool.enabled, strategy: this.pool.strategy || 'round-robin',
        pixel: String(this.pool.pixel ?? ''), bots: this.allBots.map((b) => ({ bot_id: b.id, username: b.username,
          on: b.id in weights, weight: weights[b.id] || 1 })), error: '' };
    },
    async save() {
      const f = this.form;
      const body = { enabled: f.enabled, strategy: f.strategy, pixel: Number(f.pixel),
        bots: f.bots.filter((b) => b.on).map((b) => ({ bot_id: b.bot_id, weight: Number(b.weight) || 1 })) };
      try {
        await patch(`/pools/${this.id}`, body);
        const r = await get(`/pools/${this.id}`);
        this.pool = r.pool || r;
        this.resetForm();
        this.say(t('saved'));
      } catch (e) { f.error = errText(e); }
    },
    async saveSpend() {
      const f = this.spendForm;
      const cents = fmt.reaisToCents(f.amount === '' ? '0' : f.amount);
      if (!Number.isFinite(cents) || cents < 0) { f.error = t('bad_price'); return; }
      f.error = '';
      try {
        await put('/spend/manual', { pool_id: this.id, day: f.day, amount_cents: cents });
        const s = await get('/summary', { range: 'today', pool: this.id });
        this.metrics = s.metrics || {};
        this.say(t('saved'));
      } catch (e) { f.error = errText(e); }
    },
  };
}

export function botsPage() {
  return {
    ...base(),
    rows: [],
    today: {},
    init() { live.subscribe({}); this.load(); },
    async load() {
      try {
        const [b, m] = await Promise.all([get('/bots'), get('/by-bot', { range: 'today' })]);
        this.rows = b.rows || [];
        this.today = Object.fromEntries((m.rows || []).map((r) => [r.bot_id, r]));
        this.state = 'ok';
      } catch (e) { this.fail(e); }
    },
    async toggle(b) {
      try {
        await patch(`/bots/${b.id}`, { enabled: !b.enabled });
        b.enabled = !b.enabled;
      } catch (e) { this.error = errText(e); }
    },
  };
}

export function poolsPage() {
  return {
    ...base(),
    rows: [],
    today: {},
    pixels: [],
    allBots: [],
    form: null,
    init() { live.subscribe({}); this.load(); },
    async load() {
      try {
        const [p, m, px, b] = await Promise.all([get('/pools'), get('/by-pool', { range: 'today' }), get('/pixels'), get('/bots')]);
        this.rows = p.rows || [];
        this.today = Object.fromEntries((m.rows || []).map((r) => [r.pool_id, r]));
        this.pixels = px.rows || [];
        this.allBots = b.rows || [];
        this.state = 'ok';
      } catch (e) { this.fail(e); }
    },
    botName(id) { return (this.allBots.find((b) => Number(b.id) === Number(id)) || {}).username || `#${id}`; },
    pixelName(id) { const p = this.pixels.find((x) => Number(x.id) === Number(id)); return p ? p.pixel_id : (id ?? '—'); },
    newPool() {
      this.form = { slug: '', pixel: this.pixels[0] ? String(this.pixels[0].id) : '', strategy: 'round-robin',
        bots: this.allBots.map((b) => ({ bot_id: b.id, username: b.username, on: false, weight: 1 })), error: '' };
    },
    async add() {
      const f = this.form;
      const body = { slug: f.slug.trim(), pixel: Number(f.pixel), strategy: f.strategy,
        bots: f.bots.filter((b) => b.on).map((b) => ({ bot_id: b.bot_id, weight: Number(b.weight) || 1 })) };
      try {
        await post('/pools', body);
        this.form = null;
        await this.load();
        this.say(t('saved'));
      } catch (e) { f.error = errText(e); }
    },
    async toggle(p) {
      try {
        await patch(`/pools/${p.id}`, { enabled: !p.enabled });
        p.enabled = !p.enabled;
      } catch (e) { this.error = errText(e); }
    },
  };
}

export function utmPage() {
  return {
    ...base(),
    ...rangeState(),
    group: 'campaign',
    sort: 'revenue_cents',
    order: 'desc',
    rows: [],
    columns: ['clicks', 'starts', 'checkouts', 'purchases', 'revenue_cents', 'spend_cents', 'profit_cents', 'roi'],
    init() { live.subscribe({}); this.load(); },
    setGroup(g) { this.group = g; this.load(); },
    sortBy(col) {
      if (this.sort === col) this.order = this.order === 'desc' ? 'asc' : 'desc';
      else { this.sort = col; this.order = col === 'key' ? 'asc' : 'desc'; }
      this.load();
    },
    arrow(col) { return this.sort === col ? (this.order === 'desc' ? '▼' : '▲') : ''; },
    label(col) {
      return { key: this.group === 'campaign' ? t('utm_campaign') : t('utm_source'), clicks: t('clicks'), starts: t('starts'),
        checkouts: t('checkouts'), purchases: t('purchases'), revenue_cents: t('revenue'), spend_cents: t('spend'),
        profit_cents: t('profit'), roi: t('roi') }[col];
    },
    cell(r, col) {
      if (col === 'roi') return fmt.pct(r.roi);
      if (col.endsWith('_cents')) return fmt.money(r[col]);
      return fmt.int(r[col]);
    },
    async load() {
      try {
        const r = await get('/utm', { ...this.rangeQuery(), group: this.group, sort: this.sort, order: this.order });
        this.rows = r.rows || [];
        this.state = 'ok';
      } catch (e) { this.fail(e); }
    },
  };
}

// A paginated list (leads, payments, dead letters): items + "load more" with next_cursor.
function pagedList(path) {
  return {
    ...base(),
    items: [],
    next: null,
    busy: false,
    filters: {},
    query() { return { ...this.filters, limit: 50 }; },
    async load() {
      this.state = 'loading';
      try {
        const r = await get(path, this.query());
        this.items = r.items || [];
        this.next = r.next_cursor || null;
        this.state = 'ok';
      } catch (e) { this.fail(e); }
    },
    async more() {
      if (!this.next || this.busy) return;
      this.busy = true;
      try {
        const r = await get(path, { ...this.query(), cursor: this.next });
        this.items = this.items.concat(r.items || []);
        this.next = r.next_cursor || null;
      } catch (e) { this.error = errText(e); } finally { this.busy = false; }
    },
  };
}

function routeFilters(keys) {
  const q = Alpine.store('route').query || {};
  const f = {};
  for (const k of keys) if (q[k]) f[k] = q[k];
  return f;
}

export function leadsPage() {
  return {
    ...pagedList('/leads'),
    init() { live.subscribe({}); this.filters = routeFilters(['bot', 'pool']); this.load(); },
  };
}

export function paymentsPage() {
  return {
    ...pagedList('/payments'),
    statuses: ['paid', 'pending', 'creating', 'expired', 'failed', 'refunded'],
    status: '',
    init() {
      live.subscribe({});
      this.filters = routeFilters(['bot', 'pool', 'status']);
      this.status = this.filters.status || '';
      this.load();
    },
    setStatus() {
      if (this.status) this.filters.status = this.status; else delete this.filters.status;
      this.load();
    },
  };
}

export function dlqPage() {
  return {
    ...pagedList('/dlq'),
    shown: {},
    replayed: {},
    init() { live.subscribe({}); this.load(); },
    async details(d) {
      if (this.shown[d.id]) { delete this.shown[d.id]; return; }
      try {
        const r = await get(`/dlq/${d.id}`);
        this.shown[d.id] = JSON.stringify(r, null, 2);
      } catch (e) { this.error = errText(e); }
    },
    async replay(d) {
      try {
        await post(`/dlq/${d.id}/replay`, {});
        this.replayed[d.id] = true;
        this.say(t('replayed'));
      } catch (e) { this.error = errText(e); }
    },
  };
}

export function pixelsPage() {
  return {
    ...base(),
    rows: [],
    form: null,
    edit: null,
    init() { live.subscribe({}); this.load(); },
    async load() {
      try {
        const r = await get('/pixels');
        this.rows = r.rows || [];
        this.state = 'ok';
      } catch (e) { this.fail(e); }
    },
    newPixel() { this.form = { pixel_id: '', token: '', test_event_code: '', error: '' }; },
    async add() {
      const f = this.form;
      const body = { pixel_id: f.pixel_id.trim(), token: f.token };
      if (f.test_event_code.trim()) body.test_event_code = f.test_event_code.trim();
      try {
        await post('/pixels', body);
        this.form = null;   // the token leaves the page with the form
        await this.load();
        this.say(t('saved'));
      } catch (e) { f.error = errText(e); }
    },
    startEdit(p) { this.edit = { id: p.id, token: '', test_event_code: p.test_event_code || '', error: '' }; },
    async saveEdit() {
      const f = this.edit;
      const body = { test_event_code: f.test_event_code.trim() || null };
      if (f.token) body.token = f.token;
      try {
        await patch(`/pixels/${f.id}`, body);
        this.edit = null;
        await this.load();
        this.say(t('saved'));
      } catch (e) { f.error = errText(e); }
    },
  };
}

export function spendPage() {
  return {
    ...base(),
    ...rangeState(),
    range: '7d',
    rows: [],
    pools: [],
    accounts: [],
    form: { pool_id: '', day: '', amount: '', error: '' },
    init() {
      live.subscribe({});
      this.form.day = fmt.todayLocal();
      this.load();
    },
    poolName(id) { const p = this.pools.find((x) => Number(x.id) === Number(id)); return p ? p.slug : (id ? `#${id}` : '—'); },
    async load() {
      try {
        const [s, p, a] = await Promise.all([get('/spend', this.rangeQuery()), get('/pools'), get('/adaccounts')]);
        this.rows = s.rows || [];
        this.pools = p.rows || [];
        this.accounts = a.rows || [];
        if (!this.form.pool_id && this.pools[0]) this.form.pool_id = String(this.pools[0].id);
        this.state = 'ok';
      } catch (e) { this.fail(e); }
    },
    async save() {
      const f = this.form;
      const cents = fmt.reaisToCents(f.amount === '' ? '0' : f.amount);
      if (!Number.isFinite(cents) || cents < 0) { f.error = t('bad_price'); return; }
      f.error = '';
      try {
        await put('/spend/manual', { pool_id: Number(f.pool_id), day: f.day, amount_cents: cents });
        f.amount = '';
        await this.load();
        this.say(t('saved'));
      } catch (e) { f.error = errText(e); }
    },
  };
}
