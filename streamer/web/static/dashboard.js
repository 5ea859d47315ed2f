"use strict";
// The live dashboard: renders the daemon's SSE events (/events). No number is derived here beyond
// unit conversion (fraction -> %, ms -> countdown); every formula runs in the daemon.
(function () {
  const TAPE_ROWS = 60;
  const FUNDING_ROWS = 26;
  const OI_ROWS = 14;
  const ALERTS_KEPT = 50;
  const BIG_LIQ_USD = 1e6;
  const SERIES_COLORS = ["#58a6ff", "#f0883e", "#a371f7", "#3fb950", "#db61a2", "#e3b341"];

  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const isNum = (x) => typeof x === "number" && isFinite(x);

  // ---------------------------------------------------------------- formatting (units only)
  function pct(frac, digits, signed) {
    if (!isNum(frac)) return "–";
    const v = (frac * 100).toFixed(digits);
    return (signed !== false && frac > 0 ? "+" : "") + v + " %";
  }
  function pctChange(p, digits) { // already in percent
    if (!isNum(p)) return "–";
    return (p > 0 ? "+" : "") + p.toFixed(digits) + " %";
  }
  function usd(x) {
    if (!isNum(x)) return "–";
    const a = Math.abs(x);
    if (a >= 1e9) return "$" + (x / 1e9).toFixed(2) + "B";
    if (a >= 1e6) return "$" + (x / 1e6).toFixed(2) + "M";
    if (a >= 1e3) return "$" + (x / 1e3).toFixed(1) + "k";
    return "$" + x.toFixed(0);
  }
  function price(x) {
    if (!isNum(x)) return "–";
    if (Math.abs(x) >= 1000) return x.toLocaleString("en-US", { maximumFractionDigits: 1 });
    return String(Number(x.toPrecision(5))); // 3.3365, 177.5, 0.0045123: no trailing zeros
  }
  function hms(ms) {
    if (!isNum(ms)) return "–";
    return new Date(ms).toISOString().substring(11, 19);
  }
  function countdown(ms) {
    if (!isNum(ms)) return "continuous";
    if (ms <= 0) return "settling";
    const s = Math.floor(ms / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h > 0 ? h + "h " + String(m).padStart(2, "0") + "m" : m + "m " + String(s % 60).padStart(2, "0") + "s";
  }
  function ageText(s) {
    if (!isNum(s)) return "–";
    return s < 10 ? s.toFixed(1) + " s" : s < 120 ? s.toFixed(0) + " s" : (s / 60).toFixed(0) + " min";
  }
  function ageClass(s, staleAfter) {
    if (!isNum(s)) return "dim";
    return s > staleAfter * 4 ? "dead" : s > staleAfter ? "stale" : "dim";
  }
  // sign colour, stronger past thresholds (|x| >= lo: tinted, >= hi: solid)
  function signClass(x, lo, hi) {
    if (!isNum(x) || x === 0) return "";
    const base = x > 0 ? "pos" : "neg";
    const a = Math.abs(x);
    return base + (a >= hi ? " x2" : a >= lo ? " x1" : "");
  }

  // ---------------------------------------------------------------- state
  let last = null;           // last state event
  let lastAt = 0;            // Date.now() when it arrived
  const alerts = new Map();  // id -> latest alert (firing or resolved)
  const seenTape = new Set();

  function serverNow() { // the daemon's clock, advanced by the time since the last state arrived
    return last ? last.wall_ms + (Date.now() - lastAt) : Date.now();
  }

  // ---------------------------------------------------------------- panels
  function renderVenues(rows) {
    if (!rows.length) { $("venues").innerHTML = '<span class="dim">no session yet</span>'; return; }
    $("venues").innerHTML = rows.map((v) => {
      const stale = v.stale_streams > 0;
      const cls = v.state === "open" ? (stale ? "stale" : "open") : v.state === "connecting" ? "connecting" : "down";
      const label = v.state + (stale ? " · " + v.stale_streams + "/" + v.streams + " streams stale" : "");
      return '<span class="chip ' + cls + '" title="' + esc(v.last_error || "") + '"><span class="dot"></span><b>' +
        esc(v.session) + "</b> " + esc(label) + ' · <span class="' + ageClass(v.last_frame_age_s, 10) + '">' +
        ageText(v.last_frame_age_s) + "</span>" + (v.reconnects ? " · " + v.reconnects + " reconnects" : "") + "</span>";
    }).join("");
  }

  function renderFunding(panel, wall) {
    const rows = panel.rows;
    const shown = rows.slice(0, FUNDING_ROWS);
    $("funding").tBodies[0].innerHTML = shown.map((r) => {
      const age = isNum(r.recv_ts) ? (wall - r.recv_ts) / 1000 : null;
      const interval = isNum(r.interval_h) ? " / " + r.interval_h + "h" : "";
      return "<tr><td>" + esc(r.symbol) + "</td><td>" + esc(r.exchange) + "</td>" +
        '<td class="r">' + pct(r.rate, 4) + '<span class="dim">' + interval + "</span></td>" +
        '<td class="r ' + signClass(r.rate_8h, 0.0002, 0.0005) + '">' + pct(r.rate_8h, 4) + "</td>" +
        '<td class="r ' + signClass(r.annualized, 0.2, 0.5) + '">' + pct(r.annualized, 1) + "</td>" +
        '<td class="r">' + pct(r.predicted_rate, 4) + "</td>" +
        '<td class="r">' + pct(r.avg_rate_8h, 4) + "</td>" +
        '<td class="r">' + countdown(isNum(r.next_funding_ts) ? r.next_funding_ts - wall : null) + "</td>" +
        '<td class="r ' + ageClass(age, 10) + '">' + ageText(age) + "</td></tr>";
    }).join("");
    $("funding-more").textContent = panel.total > shown.length
      ? "+ " + (panel.total - shown.length) + " more (single venue, smaller |rate| first out): /state/funding" : "";
    $("spreads").innerHTML = panel.spreads.length ? "Widest venue spread (per 8 h → carry a year): " +
      panel.spreads.map((s) => "<b>" + esc(s.symbol) + "</b> " + esc(s.high.exchange) + " − " + esc(s.low.exchange) +
        " " + pct(s.spread_8h, 4, false) + " → " + pct(s.carry_annualized, 1, false)).join(" · ") : "";
  }

  function renderOI(rows, nowMs) {
    $("oi").tBodies[0].innerHTML = rows.slice(0, OI_ROWS).map((r) => {
      const age = isNum(nowMs) && isNum(r.ts) ? (nowMs - r.ts) / 1000 : null;
      return "<tr><td>" + esc(r.symbol) + "</td><td>" + esc(r.exchange) + '</td><td class="r">' + usd(r.oi_usd) +
        '</td><td class="r ' + signClass(r.change_1h_usd_pct, 2, 5) + '">' + pctChange(r.change_1h_usd_pct, 2) +
        '</td><td class="r ' + signClass(r.change_24h_usd_pct, 5, 15) + '">' + pctChange(r.change_24h_usd_pct, 2) +
        '</td><td class="r ' + signClass(r.change_24h_base_pct, 5, 15) + '">' + pctChange(r.change_24h_base_pct, 2) +
        '</td><td class="r ' + ageClass(age, 30) + '">' + ageText(age) + "</td></tr>";
    }).join("");
  }

  function renderHeatmap(assets) {
    const root = $("heatmap");
    root.textContent = "";
    if (!assets.length) { root.innerHTML = '<span class="dim">no liquidations in the last hour</span>'; return; }
    for (const a of assets) {
      const box = document.createElement("div");
      box.className = "heat";
      const h = document.createElement("h3");
      h.innerHTML = esc(a.asset) + ' <span class="dim">· bucket $' + esc(price(a.bucket_usd)) + " · " + a.count +
        ' liquidations ·</span> <span class="long-t">longs ' + usd(a.long_usd) + '</span> <span class="dim">/</span> ' +
        '<span class="short-t">shorts ' + usd(a.short_usd) + "</span>";
      box.appendChild(h);
      const max = Math.max(1, ...a.buckets.map((b) => Math.max(b.long_usd, b.short_usd)));
      for (const b of a.buckets.slice().reverse()) { // highest price on top
        const row = document.createElement("div");
        row.className = "hrow";
        row.title = "$" + price(b.price_low) + "–" + price(b.price_high) + ": longs " + usd(b.long_usd) +
          ", shorts " + usd(b.short_usd) + " (" + b.count + ")";
        const l = document.createElement("div"); l.className = "l";
        const lb = document.createElement("div"); lb.className = "bar long";
        lb.style.width = (100 * b.long_usd / max).toFixed(1) + "%";
        l.appendChild(lb);
        const px = document.createElement("div"); px.className = "px"; px.textContent = price(b.price_low);
        const r = document.createElement("div");
        const rb = document.createElement("div"); rb.className = "bar short";
        rb.style.width = (100 * b.short_usd / max).toFixed(1) + "%";
        r.appendChild(rb);
        row.append(l, px, r);
        box.appendChild(row);
      }
      root.appendChild(box);
    }
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svgEl(name, attrs, text) {
    const el = document.createElementNS(SVG, name);
    for (const k in attrs) el.setAttribute(k, attrs[k]);
    if (text != null) el.textContent = text;
    return el;
  }

  function renderOptions(series) {
    const svg = $("ivchart");
    svg.textContent = "";
    const legend = $("ivlegend");
    legend.textContent = "";
    const pts = series.flatMap((s) => s.points);
    if (!pts.length) {
      svg.appendChild(svgEl("text", { x: 20, y: 95 }, "no option data yet"));
      $("skew").tBodies[0].innerHTML = "";
      return;
    }
    const W = 560, H = 190, L = 44, R = 10, T = 10, B = 24;
    const maxDays = Math.max(...pts.map((p) => p.days), 1);
    let lo = Math.min(...pts.map((p) => p.atm_iv)), hi = Math.max(...pts.map((p) => p.atm_iv));
    const pad = Math.max((hi - lo) * 0.15, 0.01); lo -= pad; hi += pad;
    const x = (d) => L + (W - L - R) * d / maxDays;
    const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
    for (let i = 0; i <= 4; i++) {
      const v = lo + (hi - lo) * i / 4;
      svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
      svg.appendChild(svgEl("text", { x: 4, y: y(v) + 3 }, (v * 100).toFixed(1) + "%"));
    }
    for (let i = 0; i <= 4; i++) {
      const d = maxDays * i / 4;
      svg.appendChild(svgEl("text", { x: x(d) - 8, y: H - 6 }, d.toFixed(0) + "d"));
    }
    series.forEach((s, i) => {
      const color = SERIES_COLORS[i % SERIES_COLORS.length];
      if (s.points.length) {
        svg.appendChild(svgEl("polyline", { fill: "none", stroke: color, "stroke-width": 2,
          points: s.points.map((p) => x(p.days).toFixed(1) + "," + y(p.atm_iv).toFixed(1)).join(" ") }));
        for (const p of s.points) {
          const c = svgEl("circle", { cx: x(p.days), cy: y(p.atm_iv), r: 3, fill: color });
          c.appendChild(svgEl("title", {}, s.exchange + " " + s.underlying + " " + p.expiry + ": " + pct(p.atm_iv, 1, false)));
          svg.appendChild(c);
        }
      }
      const item = document.createElement("span");
      const sw = document.createElement("i"); sw.style.background = color;
      item.append(sw, document.createTextNode(s.exchange + " " + s.underlying +
        (isNum(s.underlying_price) ? " @ " + price(s.underlying_price) : "")));
      legend.appendChild(item);
    });
    const rows = [];
    for (const s of series) for (const p of s.points.slice(0, 4)) rows.push([s, p]);
    $("skew").tBodies[0].innerHTML = rows.map(([s, p]) => "<tr><td>" + esc(s.exchange) + " " +
      esc(s.underlying) + "</td><td>" + esc(p.expiry) + '</td><td class="r">' + p.days.toFixed(1) +
      '</td><td class="r">' + pct(p.atm_iv, 1, false) + '</td><td class="r ' + signClass(p.skew_25d, 0.02, 0.05) + '">' +
      (isNum(p.skew_25d) ? (p.skew_25d > 0 ? "+" : "") + (p.skew_25d * 100).toFixed(2) : "–") +
      "</td></tr>").join("");
  }

  function renderBasis(rows) {
    $("basis").tBodies[0].innerHTML = rows.length ? rows.map((b) => "<tr><td>" + esc(b.exchange) + '</td><td title="' +
      esc(b.expiry) + " · mark " + price(b.mark_price) + " · index " + price(b.index_price) + '">' + esc(b.symbol) +
      '</td><td class="r">' + b.days_to_expiry.toFixed(1) + '</td><td class="r ' + signClass(b.basis, 0.005, 0.02) + '">' +
      pct(b.basis, 3) + '</td><td class="r ' + signClass(b.annualized_basis, 0.1, 0.25) + '">' +
      pct(b.annualized_basis, 2) + "</td></tr>").join("")
      : '<tr><td colspan="5" class="dim">no dated future quoted</td></tr>';
  }

  function renderAlerts() {
    const list = [...alerts.values()].sort((a, b) => (a.status === b.status ? 0 : a.status === "firing" ? -1 : 1) ||
      b.ts - a.ts);
    $("alerts").innerHTML = list.length ? list.map((a) => '<li class="' + esc(a.status) + " " + esc(a.severity) +
      '"><span class="st">' + esc(a.status) + '</span><span class="dim">' + hms(a.ts) + " · " + esc(a.rule) + " · " +
      esc(a.severity) + "</span><br>" + esc(a.summary) + "</li>").join("")
      : '<li class="dim">no alert yet</li>';
  }

  function addAlert(a) {
    const prev = alerts.get(a.id);
    if (prev && prev.ts > a.ts) return;
    alerts.set(a.id, a);
    if (alerts.size > ALERTS_KEPT) { // forget the oldest resolved first
      const oldest = [...alerts.values()].sort((x, y) => (x.status === "resolved" ? 0 : 1) - (y.status === "resolved" ? 0 : 1) ||
        x.ts - y.ts)[0];
      alerts.delete(oldest.id);
    }
  }

  function addLiquidation(l) {
    const key = [l.exchange, l.raw_symbol, l.ts, l.side, l.price, l.qty].join("|");
    if (seenTape.has(key)) return;
    seenTape.add(key);
    if (seenTape.size > 5000) seenTape.clear();
    const body = $("tape").tBodies[0];
    const tr = document.createElement("tr");
    tr.className = "fresh" + (isNum(l.value_usd) && l.value_usd >= BIG_LIQ_USD ? " big" : "");
    tr.innerHTML = "<td>" + hms(l.ts) + "</td><td>" + esc(l.exchange) + "</td><td>" + esc(l.symbol || l.raw_symbol) +
      '</td><td><span class="side ' + esc(l.side) + '">' + esc(l.side).toUpperCase() + '</span></td><td class="r">' +
      price(l.price) + '</td><td class="r">' + usd(l.value_usd) + "</td>";
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > TAPE_ROWS) body.deleteRow(body.rows.length - 1);
  }

  function renderClock() {
    if (!last) return;
    const since = (Date.now() - lastAt) / 1000;
    const age = $("age");
    age.textContent = ageText(since) + " ago";
    age.className = ageClass(since, 3);
    $("now").textContent = isNum(last.now_ms) ? hms(last.now_ms) + " UTC" : "–";
    const lag = isNum(last.now_ms) ? (last.wall_ms - last.now_ms) / 1000 : null;
    $("lag").textContent = ageText(lag);
    $("lag").className = ageClass(lag, 10);
  }

  function onState(s) {
    last = s;
    lastAt = Date.now();
    for (const a of s.alerts.active) if (!alerts.has(a.id)) addAlert(a);
    const counts = Object.entries(s.alerts.counts || {}).filter(([, c]) => c.firing || c.resolved)
      .map(([rule, c]) => esc(rule) + " " + c.firing + "↑/" + c.resolved + "↓");
    $("alert-counts").innerHTML = counts.length ? "fired↑/resolved↓ since start: " + counts.join(" · ") : "";
    renderVenues(s.venues);
    renderFunding(s.funding, serverNow());
    renderOI(s.open_interest, s.now_ms);
    renderHeatmap(s.heatmap);
    renderOptions(s.options);
    renderBasis(s.basis);
    renderAlerts();
    renderClock();
  }

  // ---------------------------------------------------------------- connection
  // with a token configured the page itself was opened as /?token=...: the stream takes the same one
  // (an EventSource cannot send an Authorization header); it stays in the URL so a reload works
  const token = new URLSearchParams(location.search).get("token");
  const conn = $("conn");
  function setConn(text, cls) { conn.textContent = text; conn.className = "pill " + cls; }

  const source = new EventSource("events" + (token ? "?token=" + encodeURIComponent(token) : ""));
  source.onopen = () => setConn("live", "ok");
  source.onerror = () => setConn(source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…", "bad");
  source.addEventListener("state", (e) => onState(JSON.parse(e.data)));
  source.addEventListener("alert", (e) => { addAlert(JSON.parse(e.data)); renderAlerts(); });
  source.addEventListener("liquidation", (e) => addLiquidation(JSON.parse(e.data)));
  source.addEventListener("client", (e) => {
    const c = JSON.parse(e.data);
    $("dropped").textContent = String(c.dropped);
    $("dropped").className = c.dropped ? "stale" : "";
  });
  setInterval(renderClock, 1000);
})();
