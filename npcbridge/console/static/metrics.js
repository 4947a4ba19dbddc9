// Live metrics: charts drawn from /console/api/metrics snapshots (the registry /metrics
// renders). Turns per second is the difference of two snapshots' turn counters over their time.
import { $, el, usd } from "./dom.js";
import { api } from "./server.js";
import { shared } from "./shared.js";

const KEPT_SAMPLES = 90;

function lineChart(canvas, values, color, max) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  ctx.strokeStyle = "#2f3440";
  ctx.strokeRect(0, 0, width, height);
  if (values.length < 2) return;
  const top = max ?? Math.max(...values, 1e-9);
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / (values.length - 1)) * (width - 4) + 2;
    const y = height - 4 - (v / top) * (height - 8);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#9aa1ad";
  ctx.font = "11px sans-serif";
  ctx.fillText(top.toFixed(2), 4, 12);
}

function barChart(canvas, labels, values) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const top = Math.max(...values, 1);
  const w = width / Math.max(values.length, 1);
  ctx.font = "10px sans-serif";
  values.forEach((v, i) => {
    const h = (v / top) * (height - 24);
    ctx.fillStyle = "#e0a84f";
    ctx.fillRect(i * w + 2, height - 14 - h, w - 4, h);
    ctx.fillStyle = "#9aa1ad";
    ctx.fillText(labels[i], i * w + 2, height - 2);
    if (v) ctx.fillText(String(v), i * w + 2, height - 16 - h);
  });
}

// rows of [label, fraction 0..1, text, over the limit]
function bars(container, rows) {
  container.replaceChildren(
    ...(rows.length
      ? rows.map(([label, fraction, text, over]) => {
          const fill = el("div", { class: "fill" + (over ? " over" : "") });
          fill.style.width = Math.max(0, Math.min(1, fraction)) * 100 + "%";
          return el("div", { class: "bar" }, el("span", {}, label), el("div", { class: "track" }, fill), el("span", {}, text));
        })
      : [el("p", { class: "note" }, "none yet")])
  );
}

const against = (usdSpent, limit) => usd(usdSpent) + (limit ? " / $" + limit : "");

function spendRows(day) {
  const rows = [[`${day.day} total`, day.limit_usd ? day.usd / day.limit_usd : 0, against(day.usd, day.limit_usd), day.limit_usd && day.usd > day.limit_usd]];
  for (const kind of ["npc", "player"]) {
    for (const row of day[kind].slice(0, 8)) {
      const share = row.limit_usd ? row.usd / row.limit_usd : day.usd ? row.usd / day.usd : 0;
      rows.push([`${kind} ${row.name}`, share, against(row.usd, row.limit_usd), row.limit_usd && row.usd > row.limit_usd]);
    }
  }
  return rows;
}

export async function refreshMetrics() {
  const m = await api("metrics");
  const samples = shared.samples;
  samples.push(m);
  if (samples.length > KEPT_SAMPLES) samples.shift();
  const rates = [];
  for (let i = 1; i < samples.length; i++) {
    const [a, b] = [samples[i - 1], samples[i]];
    rates.push((b.turns_total - a.turns_total) / Math.max(b.at - a.at, 1e-3));
  }
  lineChart($("#chart-rate"), rates, "#e0a84f");
  $("#rate-now").textContent = `${(rates.at(-1) || 0).toFixed(2)} turns/s · ${m.turns_total} turns`;
  const buckets = m.ttft.buckets;
  const counts = buckets.map((b, i) => b[1] - (i ? buckets[i - 1][1] : 0));
  barChart($("#chart-ttft"), buckets.map((b) => (b[0] === "+Inf" ? "∞" : String(b[0] * 1000))), counts);
  $("#ttft-note").textContent = m.ttft.count
    ? `${m.ttft.count} first tokens · mean ${((m.ttft.sum_s / m.ttft.count) * 1000).toFixed(1)} ms (bucket bounds in ms)`
    : "no upstream tokens yet";
  const errors = Object.entries(m.errors_by_code);
  const topError = Math.max(...errors.map((e) => e[1]), 1);
  bars($("#errors"), errors.map(([code, n]) => [code, n / topError, String(n)]));
  const headroom = [];
  for (const [model, limits] of Object.entries(m.headroom)) {
    for (const [limit, value] of Object.entries(limits)) headroom.push([`${model} ${limit}`, value, (value * 100).toFixed(0) + "%", value < 0.1]);
  }
  bars($("#headroom"), headroom);
  const cache = m.cache;
  $("#cache").textContent = cache.hit_rate === null ? "no cacheable turns yet" : `${(cache.hit_rate * 100).toFixed(1)}% hits (${cache.hits} / ${cache.hits + cache.misses})`;
  lineChart($("#chart-cache"), samples.map((s) => s.cache.hit_rate || 0), "#6fbf73", 1);
  const spend = $("#spend");
  spend.replaceChildren();
  const days = m.spend.days;
  if (!days.length) spend.append(el("p", { class: "note" }, "nothing spent yet"));
  for (const day of days.slice(0, 2)) {
    const block = el("div", { class: "bars" });
    bars(block, spendRows(day));
    spend.append(block);
  }
  const players = new Set(days.flatMap((d) => d.player.map((r) => r.name)));
  $("#known-players").replaceChildren(...[...players].map((p) => el("option", { value: p })));
}
