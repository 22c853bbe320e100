// A small inline SVG chart: stacked bars per time bucket (applied, rejected).
const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// series: [{t, applied, rejected}], label(t) -> axis text
export function barChart(series, { title = 'Redemptions', label = (t) => t, height = 220 } = {}) {
  const W = 760;
  const H = height;
  const pad = { l: 44, r: 10, t: 24, b: 34 };
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title });
  svg.append(s('title', {}, title));
  const max = Math.max(1, ...series.map((p) => Number(p.applied || 0) + Number(p.rejected || 0)));
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const step = iw / Math.max(1, series.length);
  const bw = Math.max(1, Math.min(40, step * 0.75));
  // y grid: 0, about half, max (whole numbers only)
  for (const v of [...new Set([0, Math.round(max / 2), max])]) {
    const y = pad.t + ih - (ih * v) / max;
    svg.append(s('line', { x1: pad.l, x2: W - pad.r, y1: y, y2: y, stroke: '#e3e7ec' }));
    svg.append(s('text', { x: pad.l - 6, y: y + 4, 'text-anchor': 'end' }, String(v)));
  }
  series.forEach((p, i) => {
    const a = Number(p.applied || 0);
    const r = Number(p.rejected || 0);
    const x = pad.l + i * step + (step - bw) / 2;
    const ha = (a / max) * ih;
    const hr = (r / max) * ih;
    const g = s('g', { 'data-t': p.t });
    g.append(s('title', {}, `${label(p.t)}: ${a} applied, ${r} rejected`));
    g.append(s('rect', { x, y: pad.t + ih - ha, width: bw, height: ha, fill: '#2e7d4f', class: 'applied' }));
    g.append(s('rect', { x, y: pad.t + ih - ha - hr, width: bw, height: hr, fill: '#d0584f', class: 'rejected' }));
    svg.append(g);
  });
  const ticks = Math.min(series.length, 6);
  for (let k = 0; k < ticks; k++) {
    const i = Math.round((k * (series.length - 1)) / Math.max(1, ticks - 1));
    const x = pad.l + i * step + step / 2;
    const anchor = ticks > 1 && k === 0 ? 'start' : ticks > 1 && k === ticks - 1 ? 'end' : 'middle';
    const tx = anchor === 'start' ? pad.l + i * step : anchor === 'end' ? pad.l + (i + 1) * step : x;
    svg.append(s('text', { x: tx, y: H - pad.b + 16, 'text-anchor': anchor }, label(series[i].t)));
  }
  svg.append(s('rect', { x: pad.l, y: 6, width: 10, height: 10, fill: '#2e7d4f' }));
  svg.append(s('text', { x: pad.l + 14, y: 15 }, 'applied'));
  svg.append(s('rect', { x: pad.l + 70, y: 6, width: 10, height: 10, fill: '#d0584f' }));
  svg.append(s('text', { x: pad.l + 84, y: 15 }, 'rejected'));
  if (!series.some((p) => Number(p.applied || 0) + Number(p.rejected || 0) > 0)) {
    svg.append(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'No redemptions in this period'));
  }
  return svg;
}

// The API lists only buckets with events; the chart shows every bucket.
export function fillBuckets(points, size, from, to) {
  const byT = new Map();
  for (const p of points) {
    const k = Math.floor(new Date(p.t).getTime() / size) * size;
    const prev = byT.get(k);
    byT.set(k, prev ? {
      ...prev, applied: Number(prev.applied) + Number(p.applied || 0),
      rejected: Number(prev.rejected) + Number(p.rejected || 0),
      discount: BigInt(prev.discount || 0) + BigInt(p.discount || 0),
    } : { ...p, t: new Date(k).toISOString() });
  }
  const out = [];
  for (let k = Math.floor(from.getTime() / size) * size; k <= to.getTime(); k += size) {
    out.push(byT.get(k) || { t: new Date(k).toISOString(), applied: 0, rejected: 0, discount: 0 });
    byT.delete(k);
  }
  return out.concat([...byT.values()]).sort((a, b) => new Date(a.t) - new Date(b.t));
}
