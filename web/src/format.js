// format.js — numbers, money (BRL, from centavos), rates and dates in the
// chosen language: pt-BR first ("R$ 1.234,56", 29/11/2026), English
// ("R$1,234.56", 29/11/2026: Brazilian day/month order in both).
import Alpine from 'alpinejs';

const locale = () => (Alpine.store('i18n').lang === 'en' ? 'en-GB' : 'pt-BR');
const cache = new Map();
function nf(key, opts) {
  const k = locale() + key;
  if (!cache.has(k)) cache.set(k, new Intl.NumberFormat(locale(), opts));
  return cache.get(k);
}

export const DASH = '—';

// money(cents): "R$ 97,00"; "—" for null/undefined.
export function money(cents) {
  if (cents === null || cents === undefined || Number.isNaN(Number(cents))) return DASH;
  return nf('brl', { style: 'currency', currency: 'BRL' }).format(Number(cents) / 100);
}

export function int(n) {
  if (n === null || n === undefined) return DASH;
  return nf('int', { maximumFractionDigits: 0 }).format(Number(n));
}

// pct(rate): 0.125 → "12,5%"; "—" for null.
export function pct(rate) {
  if (rate === null || rate === undefined || !Number.isFinite(Number(rate))) return DASH;
  return nf('pct', { style: 'percent', maximumFractionDigits: 1 }).format(Number(rate));
}

// day("2026-11-29") → "29/11/2026" (no time zone arithmetic: it is already local).
export function day(s) {
  if (!s || typeof s !== 'string') return DASH;
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(s);
  return m ? `${m[3]}/${m[2]}/${m[1]}` : s;
}

// time("2026-11-29T13:05:00-03:00") → "29/11/2026 13:05" in the user's time zone.
export function time(s) {
  if (!s) return DASH;
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return String(s);
  const tz = Alpine.store('session').user?.timezone || 'America/Sao_Paulo';
  try {
    return new Intl.DateTimeFormat(locale(), { timeZone: tz, day: '2-digit', month: '2-digit', year: 'numeric',
      hour: '2-digit', minute: '2-digit', hour12: false }).format(d).replace(',', '');
  } catch (e) {
    return d.toISOString();
  }
}

// reaisToCents("97,50" | "97.50" | "1.234,56") → 9750 / 123456; NaN when not a price.
export function reaisToCents(s) {
  let t = String(s ?? '').trim().replace(/^R\$\s*/, '');
  if (!/^\d{1,3}([.,]?\d{3})*([.,]\d{1,2})?$|^\d+([.,]\d{1,2})?$/.test(t)) return NaN;
  const m = /[.,](\d{1,2})$/.exec(t);
  let frac = 0;
  if (m) { frac = parseInt(m[1].padEnd(2, '0'), 10); t = t.slice(0, m.index); }
  return parseInt(t.replace(/[.,]/g, ''), 10) * 100 + frac;
}

// centsToReais(9750) → "97,50" (for form fields).
export function centsToReais(c) {
  if (c === null || c === undefined) return '';
  return (Number(c) / 100).toFixed(2).replace('.', ',');
}

// Derived metrics, the API's rules: profit = revenue − spend; ROI = revenue / spend − 1, null when spend is 0 or unknown.
export function profit(revenue, spend) {
  return (spend === null || spend === undefined) ? null : Number(revenue || 0) - Number(spend);
}
export function roi(revenue, spend) {
  return (!spend) ? null : Number(revenue || 0) / Number(spend) - 1;
}
// rate(a, b) = a / b, null when b is 0.
export function rate(a, b) { return b ? Number(a || 0) / Number(b) : null; }

// Today's date in the user's time zone, YYYY-MM-DD.
export function todayLocal() {
  const tz = Alpine.store('session').user?.timezone || 'America/Sao_Paulo';
  try {
    return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
  } catch (e) {
    return new Date().toISOString().slice(0, 10);
  }
}

// The metric cards of the overview, bot and pool pages, in order, with their i18n keys.
export const CARDS = [
  ['revenue_cents', 'revenue'], ['spend_cents', 'spend'], ['profit_cents', 'profit'], ['roi', 'roi'],
  ['clicks', 'clicks'], ['automated_clicks', 'automated_clicks'], ['starts', 'starts'],
  ['checkouts', 'checkouts'], ['purchases', 'purchases'],
];

// A bot's cards: spend is known per pool and campaign, not per bot.
export const BOT_CARDS = CARDS.filter(([k]) => !['spend_cents', 'profit_cents', 'roi'].includes(k));

// metric(m, key): one metric of M formatted for its card ("—" when absent or null).
export function metric(m, key) {
  const v = m ? m[key] : undefined;
  if (key === 'roi') return pct(v);
  if (key.endsWith('_cents')) return money(v);
  return int(v);
}
