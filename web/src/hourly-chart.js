// hourly-chart.js — the overview's chart with uPlot: revenue per hour (bars),
// cumulative revenue and cumulative spend (lines; a day's spend is counted at
// its first hour) over every hour of the range, so the crossing of the two
// lines is the break-even. Ranges longer than HOURLY_MAX_DAYS (GET /hourly's
// limit) are drawn per day from GET /daily instead: revenue per day (bars)
// and the same two cumulative lines, one point per day.
import uPlot from 'uplot';
import { money } from './format.js';

const charts = new WeakMap();   // element → {plot, observer}; kept out of Alpine's reactivity

// Every day from FROM to TO (YYYY-MM-DD, inclusive), at most 400.
function daysBetween(from, to) {
  const out = [];
  const d = new Date(from + 'T00:00:00Z');
  const end = new Date(to + 'T00:00:00Z');
  while (d <= end && out.length < 400) {
    out.push(d.toISOString().slice(0, 10));
    d.setUTCDate(d.getUTCDate() + 1);
  }
  return out;
}

// The longest range GET /hourly answers (days); longer ones use GET /daily.
export const HOURLY_MAX_DAYS = 31;

// The number of days of the API query Q ({range} or {range: 'custom', from, to}).
export function daysOf(q) {
  if (q.range === 'custom') {
    const ms = Date.parse(q.to + 'T00:00:00Z') - Date.parse(q.from + 'T00:00:00Z');
    return Number.isFinite(ms) ? Math.round(ms / 86400000) + 1 : 1;
  }
  return { '7d': 7, '30d': 30 }[q.range] || 1;
}

// Whether the chart of Q is drawn per day (GET /daily) rather than per hour.
export function isDaily(q) {
  return daysOf(q) > HOURLY_MAX_DAYS;
}

// dailyData(range, rows) → [x (s, local day read as UTC), revenue/day, cum revenue, cum spend] in
// reais, every day of the range (GET /daily's rows carry the day's spend).
export function dailyData(range, rows) {
  const days = (range && range.from && range.to) ? daysBetween(range.from, range.to) : [];
  const byDay = new Map();
  for (const r of rows || []) byDay.set(r.day, r);
  const xs = [], perDay = [], cumRev = [], cumSpend = [];
  let cr = 0, cs = 0;
  for (const day of days) {
    const r = byDay.get(day);
    const v = r ? Number(r.revenue_cents || 0) : 0;
    cr += v;
    cs += r ? Number(r.spend_cents || 0) : 0;
    xs.push(Date.parse(day + 'T00:00:00Z') / 1000);
    perDay.push(v / 100);
    cumRev.push(cr / 100);
    cumSpend.push(cs / 100);
  }
  return [xs, perDay, cumRev, cumSpend];
}

// data(range, rows, spendByDay) → [x (s, local day/hour read as UTC), revenue/h, cum revenue, cum spend] in reais.
export function chartData(range, rows, spendByDay) {
  const days = (range && range.from && range.to) ? daysBetween(range.from, range.to) : [];
  const rev = new Map();
  for (const r of rows || []) rev.set(`${r.day} ${r.hour}`, Number(r.revenue_cents || 0));
  const spend = new Map();
  for (const s of spendByDay || []) spend.set(s.day, Number(s.spend_cents || 0));
  const xs = [], perHour = [], cumRev = [], cumSpend = [];
  let cr = 0, cs = 0;
  for (const day of days) {
    const base = Date.parse(day + 'T00:00:00Z') / 1000;
    cs += spend.get(day) || 0;
    for (let h = 0; h < 24; h++) {
      const v = rev.get(`${day} ${h}`) || 0;
      cr += v;
      xs.push(base + h * 3600);
      perHour.push(v / 100);
      cumRev.push(cr / 100);
      cumSpend.push(cs / 100);
    }
  }
  return [xs, perHour, cumRev, cumSpend];
}

// "14h", or "29/11 14h" (MULTIDAY): X is a local day and hour read as UTC.
function hourLabel(ts, multiDay) {
  const d = new Date(ts * 1000);
  const h = `${d.getUTCHours()}h`;
  if (!multiDay) return h;
  return `${String(d.getUTCDate()).padStart(2, '0')}/${String(d.getUTCMonth() + 1).padStart(2, '0')} ${h}`;
}

// "29/11": X is a local day read as UTC.
function dayLabel(ts) {
  const d = new Date(ts * 1000);
  return `${String(d.getUTCDate()).padStart(2, '0')}/${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}


// render(el, data, labels, daily): draws (or redraws) the chart in EL; DAILY:
// DATA is dailyData's (one point per day), else chartData's (one per hour).
export function render(el, data, labels, daily = false) {
  destroy(el);
  const width = Math.max(280, el.clientWidth || 600);
  const multiDay = data[0].length > 24;
  const xLabel = daily ? dayLabel : (ts) => hourLabel(ts, multiDay);
  const fmtMoney = (u, v) => (v === null || v === undefined ? '—' : money(Math.round(v * 100)));
  const opts = {
    width,
    height: 260,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    legend: { live: true },
    cursor: { points: { show: false } },
    scales: { x: { time: true } },
    axes: [
      { values: (u, splits) => splits.map(xLabel), space: 50 },
      { values: (u, vals) => vals.map((v) => money(Math.round(v * 100)).replace(/,00$|\.00$/, '')), size: 80 },
    ],
    series: [
      { label: labels.when, value: (u, ts) => (ts == null ? '—' : daily ? dayLabel(ts) : hourLabel(ts, true)) },
      { label: daily ? labels.perDay : labels.perHour, fill: 'rgba(79,70,229,0.35)', stroke: 'rgb(79,70,229)',
        width: 1, paths: uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false }, value: fmtMoney },
      { label: labels.cumRevenue, stroke: 'rgb(22,163,74)', width: 2, points: { show: false }, value: fmtMoney },
      { label: labels.cumSpend, stroke: 'rgb(220,38,38)', width: 2, dash: [6, 4], points: { show: false }, value: fmtMoney },
    ],
  };
  const plot = new uPlot(opts, data, el);
  const observer = new ResizeObserver(() => {
    const w = Math.max(280, el.clientWidth);
    if (Math.abs(w - plot.width) > 4) plot.setSize({ width: w, height: 260 });
  });
  observer.observe(el);
  charts.set(el, { plot, observer });
}

export function destroy(el) {
  const c = el && charts.get(el);
  if (c) {
    c.observer.disconnect();
    c.plot.destroy();
    charts.delete(el);
  }
}
