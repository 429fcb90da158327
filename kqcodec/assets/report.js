// kqcodec report page: renders the table, the chart and the viewer from the
// JSON blob in #report-data.  Every name from the data reaches the page as a
// text node or an attribute value, never as markup.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const PAGE_SIZE = 40;
  const SVG = "http://www.w3.org/2000/svg";
  // Columns the caption always shows, in this order; any other numeric
  // column (a perceptual score, say) is appended after them.
  const CAPTION = ["colors", "encoded_bytes", "ratio", "psnr", "ssim", "ssimulacra2"];
  const DESCRIBED = new Set(["width", "height", "k", "colors", "bitdepth", "original_bytes",
    "encoded_bytes", "ratio", "raw_ratio", "bpp", "psnr", "ssim", "ssimulacra2", "seconds"]);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- the data ----------------------------------------------------------
  const encodePath = path => path.split("/").map(encodeURIComponent).join("/");
  const under = (base, path) => (base === "." ? "" : base + "/") + encodePath(path);
  const pics = D.names.map((name, i) => ({ name, recommended: D.recommended[i],
    bySearch: D.recommended_searched[i],
    original: D.copies[String(i)] || under(D.originals, name) }));
  const cols = D.columns;
  const kinds = Object.fromEntries(cols.map(c => [c.name, c.kind]));
  const rows = [];
  const seen = D.names.map(() => 0);  // rows of each picture so far
  for (const [picture, count] of D.runs) {
    for (let j = 0; j < count; j++) rows.push({ _i: rows.length, _pic: picture, _j: seen[picture]++ });
  }
  // The first n characters (code points, as Python counts them) of a name.
  const head = (name, n) => Array.from(name).slice(0, n).join("");
  for (const c of cols) {
    const s = D.store[c.name];
    const scale = Math.pow(10, s.decimals || 0);
    for (const r of rows) {
      let v;
      if (s.names) v = D.names[r._pic];
      else if (s.picture) v = s.picture[r._pic];
      else if (s.row) v = s.row[r._i];
      else if (s.each) v = (s.other[String(r._pic)] || s.each)[r._j];
      else if (s.codes[r._i] < 0) v = null;
      else v = head(D.names[r._pic], s.shared[r._pic]) + s.words[s.codes[r._i]];
      if (c.kind === "float" && v !== null) v = typeof v === "string" ? (v === "inf" ? Infinity : -Infinity) : v / scale;
      r[c.name] = v;
    }
  }
  const plottable = cols.filter(c => c.kind !== "text" && !D.store[c.name].described).map(c => c.name);
  const okRows = rows.filter(r => r.status === "ok" && r.k !== null && r.encoded_file);
  const isOk = new Set(okRows);
  const byPic = pics.map(() => []);
  for (const r of okRows) byPic[r._pic].push(r);
  byPic.forEach(list => list.sort((a, b) => a.k - b.k));
  // A searched row's k is that picture's own: the list is of the other rows.
  const ks = [...new Set(okRows.filter(r => r.target_psnr == null).map(r => r.k))]
    .sort((a, b) => a - b);

  function encodingUrl(r) { return under(D.encodings, r.encoded_file); }

  // The searched row where the search chose the k, else the list's row: a
  // listed k is recommended when it is smaller, or when the search found none.
  function isRecommended(r) {
    return r.k !== null && r.k === pics[r._pic].recommended &&
      (r.target_psnr != null) === pics[r._pic].bySearch;
  }

  // A column's values are stored to a number of decimals (4 significant
  // digits at its median) and shown with exactly those: more would show
  // digits the page does not have (0.179 as 0.1790 where the table holds
  // 0.17871), fewer would round a rounded value again (0.0101507, stored
  // as 0.01015, shown 0.0101).
  const decimalsOf = {};
  for (const c of cols) decimalsOf[c.name] = D.store[c.name].decimals;

  function number(v, stored) {
    if (!isFinite(v)) return v > 0 ? "inf" : "-inf";
    if (stored !== undefined) {
      return v.toLocaleString("en-US", { minimumFractionDigits: stored, maximumFractionDigits: stored });
    }
    const a = Math.abs(v);
    if (a >= 1000) return Math.round(v).toLocaleString("en-US");
    return v.toFixed(a >= 1 ? Math.max(0, 3 - Math.floor(Math.log10(a))) : 4);
  }

  // `stored`: a value of the table, held to its column's decimals.
  function show(v, kind, name, stored = true) {
    if (v === null || v === undefined) return "";
    if (kind === "float") return number(v, stored ? decimalsOf[name] : undefined);
    if (kind === "int") return name === "k" ? String(v) : v.toLocaleString("en-US");
    return String(v);
  }

  // ---- page skeleton -----------------------------------------------------
  const app = document.getElementById("app");
  const recommendedCount = pics.filter(p => p.recommended !== null).length;
  document.getElementById("summary").textContent =
    `${pics.length} picture${pics.length === 1 ? "" : "s"}, ${okRows.length} ` +
    `encoding${okRows.length === 1 ? "" : "s"}${ks.length ? " at k = " + ks.join(", ") : ""}. ` +
    `Recommended k (\u2605): the smallest whose ${D.target.column === "psnr" ? "PSNR" : D.target.column} ` +
    `reaches ${D.target.value}${D.target.unit}` +
    (D.target.searched ? ", found by searching every k (the rows with a target_psnr) " : " ") +
    `(${recommendedCount} of ${pics.length} pictures have one). ` +
    "Click a point of the chart or a row of the table to compare a picture with its encoding at full size.";

  // ---- medians per k -----------------------------------------------------
  const medians = el("table", { id: "medians" });
  {
    const head = el("tr");
    for (const name of D.medians.columns) {
      head.append(el("th", { text: name === "k" || name === "images" ? name : "median " + name }));
    }
    medians.append(el("thead", {}, head));
    const body = el("tbody");
    for (const row of D.medians.rows) {
      const tr = el("tr");
      row.forEach((v, i) => {
        if (typeof v === "string") v = v === "inf" ? Infinity : -Infinity;
        const kind = i < 2 ? "int" : kinds[D.medians.columns[i]] === "int" && Number.isInteger(v) ? "int" : "float";
        tr.append(el("td", { text: show(v, kind, D.medians.columns[i], false) }));
      });
      body.append(tr);
    }
    medians.append(body);
  }
  app.append(el("section", {}, el("h2", { text: "Medians over pictures, per k" }),
    el("div", { class: "tablewrap" }, medians)));

  // ---- the rate-distortion chart ----------------------------------------
  const W = 760, H = 440, M = { l: 60, r: 16, t: 14, b: 44 };
  const chart = svg("svg", { id: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": "size against quality, one line per picture" });
  // Up to this many pictures, the chart has a legend and labels every point.
  const FEW = 30;
  const legend = el("ul", { id: "legend" });
  const selX = el("select", { id: "chart-x", "aria-label": "x axis" });
  const selY = el("select", { id: "chart-y", "aria-label": "y axis" });
  for (const name of plottable) {
    selX.append(el("option", { value: name, text: name }));
    selY.append(el("option", { value: name, text: name }));
  }
  selX.value = plottable.includes("bpp") ? "bpp" : plottable[0];
  selY.value = plottable.includes(D.target.column) ? D.target.column :
    plottable.includes("psnr") ? "psnr" : plottable[plottable.length - 1];
  selX.addEventListener("change", drawChart);
  selY.addEventListener("change", drawChart);
  app.append(el("section", {}, el("h2", { text: "Size against quality" }),
    el("div", { class: "tools" }, el("label", { text: "x " }, selX), el("label", { text: "y " }, selY),
      el("span", { class: "hint", text: "one line per picture, points labelled with k; " +
        "a ringed point is the recommended k; click a point to view that encoding" })),
    chart, legend));

  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) { lo -= 1; hi += 1; }
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    const step = mag * (f >= 5 ? 10 : f >= 2 ? 5 : f >= 1 ? 2 : 1);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }

  function hue(i) { return `hsl(${Math.round((i * 137.508) % 360)}, 65%, 42%)`; }

  function drawChart() {
    chart.replaceChildren();
    legend.replaceChildren();
    const x = selX.value, y = selY.value;
    const shown = okRows.filter(r => Number.isFinite(r[x]) && Number.isFinite(r[y]) && visiblePic[r._pic]);
    if (!shown.length) {
      chart.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "nothing to plot"));
      return;
    }
    let x0 = Math.min(...shown.map(r => r[x])), x1 = Math.max(...shown.map(r => r[x]));
    let y0 = Math.min(...shown.map(r => r[y])), y1 = Math.max(...shown.map(r => r[y]));
    const padX = (x1 - x0) * 0.04 || 1, padY = (y1 - y0) * 0.04 || 1;
    x0 -= padX; x1 += padX; y0 -= padY; y1 += padY;
    const sx = v => M.l + (v - x0) / (x1 - x0) * (W - M.l - M.r);
    const sy = v => H - M.b - (v - y0) / (y1 - y0) * (H - M.t - M.b);
    for (const t of niceTicks(x0, x1, 8)) {
      if (t < x0 || t > x1) continue;
      chart.append(svg("line", { class: "grid", x1: sx(t), x2: sx(t), y1: M.t, y2: H - M.b }));
      chart.append(svg("text", { x: sx(t), y: H - M.b + 16, "text-anchor": "middle" }, number(t)));
    }
    for (const t of niceTicks(y0, y1, 6)) {
      if (t < y0 || t > y1) continue;
      chart.append(svg("line", { class: "grid", x1: M.l, x2: W - M.r, y1: sy(t), y2: sy(t) }));
      chart.append(svg("text", { x: M.l - 6, y: sy(t) + 4, "text-anchor": "end" }, number(t)));
    }
    chart.append(svg("line", { class: "axis", x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b }));
    chart.append(svg("line", { class: "axis", x1: M.l, x2: M.l, y1: M.t, y2: H - M.b }));
    chart.append(svg("text", { x: (M.l + W - M.r) / 2, y: H - 8, "text-anchor": "middle" }, x));
    chart.append(svg("text", { x: 14, y: (M.t + H - M.b) / 2, "text-anchor": "middle",
      transform: `rotate(-90 14 ${(M.t + H - M.b) / 2})` }, y));
    const labelled = pics.length <= FEW;
    const groups = new Map();
    for (const r of shown) {
      if (!groups.has(r._pic)) groups.set(r._pic, []);
      groups.get(r._pic).push(r);
    }
    for (const [p, list] of groups) {
      const color = hue(p);
      const g = svg("g", { "data-pic": p, class: labelled ? "" : "many" });
      g.append(svg("polyline", { class: "line", stroke: color,
        points: list.map(r => `${sx(r[x]).toFixed(1)},${sy(r[y]).toFixed(1)}`).join(" ") }));
      for (const r of list) {
        const dot = svg("circle", { cx: sx(r[x]).toFixed(1), cy: sy(r[y]).toFixed(1), r: labelled ? 4.5 : 2.5,
          fill: color, "data-pic": p, "data-k": r.k, class: isRecommended(r) ? "rec-point" : "" });
        dot.append(svg("title", {}, `${pics[p].name}\nk=${r.k}${isRecommended(r) ? " (recommended)" : ""}` +
          `\n${x} ${show(r[x], kinds[x], x)}, ${y} ${show(r[y], kinds[y], y)}`));
        dot.addEventListener("click", () => openViewer(p, r));
        g.append(dot);
        if (labelled) {
          g.append(svg("text", { x: (sx(r[x]) + 5).toFixed(1), y: (sy(r[y]) - 6).toFixed(1) }, String(r.k)));
        }
      }
      chart.append(g);
      if (labelled) {
        const pick = list.find(isRecommended) || list[list.length - 1];
        legend.append(el("li", { title: "open at k=" + pick.k, on: { click: () => openViewer(p, pick) } },
          el("span", { class: "swatch", style: `background:${color}` }), pics[p].name));
      }
    }
  }

  // ---- the table ---------------------------------------------------------
  const state = { sort: null, dir: 1, page: 0, filter: "" };
  const visiblePic = pics.map(() => true);
  const filterBox = el("input", { id: "filter", type: "search", placeholder: "filter pictures by name",
    "aria-label": "filter pictures by name" });
  const pager = el("span", { id: "pager" });
  const prev = el("button", { id: "prev", type: "button", text: "\u2039 previous" });
  const next = el("button", { id: "next", type: "button", text: "next \u203a" });
  const table = el("table", { id: "rows" });
  const headRow = el("tr", {}, el("th", { class: "thumb", text: "" }));
  for (const c of cols) {
    const th = el("th", { class: c.kind, "data-col": c.name, text: c.name, title: "sort by " + c.name });
    th.addEventListener("click", () => {
      state.dir = state.sort === c.name ? -state.dir : 1;
      state.sort = c.name;
      state.page = 0;
      renderTable();
    });
    headRow.append(th);
  }
  const tbody = el("tbody");
  table.append(el("thead", {}, headRow), tbody);
  app.append(el("section", {}, el("h2", { text: "Every picture at every k" }),
    el("div", { class: "tools" }, filterBox, prev, pager, next,
      el("span", { class: "hint", text: "click a column name to sort; \u2605 marks the recommended k" })),
    el("div", { class: "tablewrap" }, table)));

  filterBox.addEventListener("input", () => {
    state.filter = filterBox.value.toLowerCase();
    pics.forEach((p, i) => { visiblePic[i] = !state.filter || p.name.toLowerCase().includes(state.filter); });
    state.page = 0;
    renderTable();
    drawChart();
  });
  prev.addEventListener("click", () => { state.page--; renderTable(); });
  next.addEventListener("click", () => { state.page++; renderTable(); });

  function sortedRows() {
    let list = rows.filter(r => visiblePic[r._pic]);
    if (state.sort) {
      const c = state.sort, d = state.dir, text = kinds[c] === "text";
      list = list.slice().sort((a, b) => {
        const u = a[c], v = b[c];
        if (u === null && v === null) return a._i - b._i;
        if (u === null) return 1;
        if (v === null) return -1;
        const order = text ? String(u).localeCompare(String(v)) : (u < v ? -1 : u > v ? 1 : 0);
        return order * d || a._i - b._i;
      });
    }
    return list;
  }

  function renderTable() {
    const list = sortedRows();
    const pages = Math.max(1, Math.ceil(list.length / PAGE_SIZE));
    state.page = Math.min(Math.max(state.page, 0), pages - 1);
    const start = state.page * PAGE_SIZE;
    const slice = list.slice(start, start + PAGE_SIZE);
    for (const th of headRow.querySelectorAll("th[data-col]")) {
      if (th.dataset.col === state.sort) th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
    const fresh = [];
    for (const r of slice) {
      const ok = isOk.has(r);
      const tr = el("tr", { "data-row": r._i });
      if (isRecommended(r)) tr.classList.add("rec");
      const thumb = el("td", { class: "thumb" });
      if (ok) thumb.append(el("img", { src: encodingUrl(r), loading: "lazy", decoding: "async", alt: "" }));
      tr.append(thumb);
      for (const c of cols) {
        const td = el("td", { class: `${c.kind} ${c.name}`, text: show(r[c.name], c.kind, c.name) });
        if (c.name === "image") td.title = r.image;
        if (c.name === "k" && isRecommended(r)) {
          td.append(el("span", { class: "star", title: "recommended", text: " \u2605" }));
        }
        tr.append(td);
      }
      if (ok) tr.addEventListener("click", () => openViewer(r._pic, r));
      fresh.push(tr);
    }
    tbody.replaceChildren(...fresh);
    pager.textContent = list.length ?
      `rows ${start + 1}\u2013${start + slice.length} of ${list.length}` : "no rows";
    prev.disabled = state.page === 0;
    next.disabled = state.page >= pages - 1;
  }

  // ---- the viewer --------------------------------------------------------
  // The encoding shown is a row of byPic[pic], by position: a searched row may
  // share its k with a row of the list, and is another file.
  const V = { pic: null, row: null, mode: "side", zoom: 1, px: 0, py: 0, flipped: false, split: 50, gain: 8 };
  const MODES = [["side", "side by side"], ["split", "split"], ["flip", "flip (F)"], ["diff", "difference"]];

  // The difference view: the encoding is blended over the original with
  // mix-blend-mode: difference, then this filter amplifies the mean of the
  // channels and maps it to black-red-yellow-white.
  const heatMatrix = svg("feColorMatrix", { type: "matrix" });
  {
    const transfer = svg("feComponentTransfer");
    transfer.append(svg("feFuncR", { type: "table", tableValues: "0 1 1 1" }),
      svg("feFuncG", { type: "table", tableValues: "0 0 1 1" }),
      svg("feFuncB", { type: "table", tableValues: "0 0 0 1" }));
    const filter = svg("filter", { id: "heat", "color-interpolation-filters": "sRGB" });
    filter.append(heatMatrix, transfer);
    const defs = svg("svg", { width: 0, height: 0, style: "position:absolute", "aria-hidden": "true" });
    defs.append(filter);
    document.body.append(defs);
  }

  function setGain(gain) {
    V.gain = gain;
    const g = (gain / 3).toFixed(4);
    heatMatrix.setAttribute("values", `${g} ${g} ${g} 0 0  ${g} ${g} ${g} 0 0  ${g} ${g} ${g} 0 0  0 0 0 1 0`);
    updateTags();
  }

  function makePane(id) {
    const orig = el("img", { class: "orig", alt: "original", draggable: "false" });
    const enc = el("img", { class: "enc", alt: "encoding", draggable: "false" });
    const stack = el("div", { class: "stack" }, el("div", { class: "layer orig" }, orig),
      el("div", { class: "layer enc" }, enc));
    const tag = el("div", { class: "tag" });
    const tag2 = el("div", { class: "tag right" });
    const pane = el("div", { class: "pane", id }, stack, tag, tag2);
    return { pane, orig, enc, tag, tag2, encLayer: stack.lastChild, origLayer: stack.firstChild };
  }
  const A = makePane("pane-a"), B = makePane("pane-b");
  const divider = el("div", { class: "divider" });
  const slider = el("input", { id: "v-split", type: "range", min: "0", max: "100", step: "0.1", value: "50",
    "aria-label": "split position" });
  A.pane.append(divider, slider);
  const nameBox = el("span", { class: "name", id: "v-name" });
  const kSelect = el("select", { id: "v-k", "aria-label": "palette size k" });
  const modeButtons = MODES.map(([mode, label]) => el("button", { type: "button", "data-mode": mode,
    text: label, on: { click: () => setMode(mode) } }));
  const zoomLabel = el("span", { id: "v-zoom" });
  const gainSelect = el("select", { id: "v-gain", "aria-label": "difference amplification" });
  for (const g of [1, 2, 4, 8, 16, 32]) gainSelect.append(el("option", { value: g, text: `\u00d7${g}` }));
  gainSelect.value = "8";
  gainSelect.addEventListener("change", () => setGain(+gainSelect.value));
  const caption = el("div", { id: "v-caption" });
  const viewer = el("div", { id: "viewer", role: "dialog", "aria-label": "picture viewer", tabindex: "-1" },
    el("div", { class: "bar" }, nameBox, el("label", { text: "k " }, kSelect), ...modeButtons,
      el("button", { type: "button", text: "\u2212", title: "zoom out (-)", on: { click: () => zoomBy(0.5) } }),
      el("button", { type: "button", text: "1:1", title: "one picture pixel per screen pixel (0)",
        on: { click: () => resetView(1) } }),
      el("button", { type: "button", text: "+", title: "zoom in (+)", on: { click: () => zoomBy(2) } }),
      el("button", { type: "button", text: "fit", title: "whole picture", on: { click: fit } }),
      zoomLabel, el("label", { text: "difference " }, gainSelect),
      el("button", { type: "button", id: "v-close", text: "close \u00d7", on: { click: closeViewer } })),
    el("div", { class: "bar info" }, caption, el("span", { class: "keys",
      text: "\u2190/\u2192 k \u00b7 F flip \u00b7 1-4 modes \u00b7 drag or shift+arrows: pan \u00b7 wheel or +/-: zoom, 0: 1:1 \u00b7 Esc close" })),
    el("div", { class: "panes" }, A.pane, B.pane));
  document.body.append(viewer);
  setGain(8);

  kSelect.addEventListener("change", () => setRow(+kSelect.value));
  slider.addEventListener("input", () => setSplit(+slider.value));

  function current() { return byPic[V.pic][V.row]; }

  function openViewer(pic, row) {
    if (!byPic[pic].length) return;
    V.pic = pic;
    const pic0 = pics[pic];
    nameBox.textContent = pic0.name;
    nameBox.title = pic0.name;
    kSelect.replaceChildren(...byPic[pic].map((r, i) => el("option", { value: i,
      text: `k=${r.k}${isRecommended(r) ? " \u2605 recommended" : ""}` })));
    for (const img of [A.orig, B.orig]) img.src = pic0.original;
    viewer.classList.add("open");
    setRow(Math.max(byPic[pic].indexOf(row), 0));
    setMode(V.mode);
    resetView(1);
    viewer.focus();
  }

  function closeViewer() { viewer.classList.remove("open"); }

  function setRow(i) {
    V.row = i;
    const r = current();
    kSelect.value = String(i);
    for (const img of [A.enc, B.enc]) img.src = encodingUrl(r);
    const parts = [`k=${r.k}${isRecommended(r) ? " (recommended)" : ""}`];
    for (const name of CAPTION) {
      if (!(name in r) || r[name] === null) continue;
      const v = show(r[name], kinds[name], name);
      parts.push(name === "colors" ? `${v} colors` : name === "encoded_bytes" ? `${v} bytes` :
        name === "psnr" ? `PSNR ${v} dB` : `${{ ssim: "SSIM", ssimulacra2: "SSIMULACRA2" }[name] || name} ${v}`);
    }
    for (const name of plottable) {
      if (!DESCRIBED.has(name) && r[name] !== null) parts.push(`${name} ${show(r[name], kinds[name], name)}`);
    }
    caption.textContent = `${pics[V.pic].name}: ` + parts.join(" \u00b7 ");
    updateTags();
  }

  function stepK(step) {
    const j = Math.min(Math.max(V.row + step, 0), byPic[V.pic].length - 1);
    if (j !== V.row) setRow(j);
  }

  function setMode(mode) {
    // Only side by side changes the panes' size: another mode keeps the
    // pan and zoom, so that flipping shows the same detail.
    const resized = (mode === "side") !== (V.mode === "side");
    V.mode = mode;
    for (const b of modeButtons) b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
    B.pane.classList.toggle("hidden", mode !== "side");
    A.pane.classList.toggle("diff", mode === "diff");
    A.encLayer.classList.toggle("hidden", mode === "side" || (mode === "flip" && V.flipped));
    A.origLayer.classList.toggle("hidden", mode === "flip" && !V.flipped);
    B.origLayer.classList.add("hidden");
    divider.classList.toggle("hidden", mode !== "split");
    slider.classList.toggle("hidden", mode !== "split");
    gainSelect.parentNode.classList.toggle("hidden", mode !== "diff");
    setSplit(mode === "split" ? V.split : 0);
    updateTags();
    if (viewer.classList.contains("open") && resized) center();
  }

  function flip() {
    if (V.mode !== "flip") { V.flipped = false; setMode("flip"); }
    V.flipped = !V.flipped;
    setMode("flip");
  }

  function setSplit(percent) {
    const split = V.mode === "split";
    if (split) { V.split = percent; slider.value = String(percent); }
    A.encLayer.style.clipPath = percent > 0 ? `inset(0 0 0 ${percent}%)` : "";
    // The original stops at the line: under the encoding's side it showed
    // through its transparent pixels.
    A.origLayer.style.clipPath = split ? `inset(0 ${100 - percent}% 0 0)` : "";
    divider.style.left = `${percent}%`;
  }

  function updateTags() {
    if (V.pic === null) return;
    const kText = `k=${current().k}`;
    A.tag2.classList.toggle("hidden", V.mode !== "split");
    B.tag2.classList.add("hidden");
    B.tag.textContent = kText;
    if (V.mode === "side") A.tag.textContent = "original";
    else if (V.mode === "split") { A.tag.textContent = "original"; A.tag2.textContent = kText; }
    else if (V.mode === "flip") A.tag.textContent = V.flipped ? "original (F)" : `${kText} (F)`;
    else A.tag.textContent = `difference |original \u2212 ${kText}| \u00d7${V.gain}`;
  }

  // Pan and zoom are one state applied to every picture, so they move in step.
  // A pane can start between two device pixels (bars of fractional height):
  // the offset to the next whole pixel keeps 1:1 pixels sharp.
  function applyView() {
    const dpr = window.devicePixelRatio || 1;
    const scale = V.zoom / dpr;
    const snap = v => (Math.round(v * dpr) - v * dpr) / dpr;
    for (const P of [A, B]) {
      const box = P.pane.getBoundingClientRect();
      const t = `translate(${V.px + snap(box.left)}px, ${V.py + snap(box.top)}px) scale(${scale})`;
      P.orig.style.transform = t;
      P.enc.style.transform = t;
    }
    zoomLabel.textContent = V.zoom >= 1 ? `${V.zoom}:1` : `1:${+(1 / V.zoom).toFixed(2)}`;
  }

  function size() {
    const r = current();
    const scale = V.zoom / (window.devicePixelRatio || 1);
    return [r.width * scale, r.height * scale];
  }

  function center() {
    const [w, h] = size();
    V.px = Math.round((A.pane.clientWidth - w) / 2);
    V.py = Math.round((A.pane.clientHeight - h) / 2);
    applyView();
  }

  function resetView(zoom) { V.zoom = zoom; center(); }

  function fit() {
    const r = current();
    const dpr = window.devicePixelRatio || 1;
    resetView(Math.min(A.pane.clientWidth / r.width, A.pane.clientHeight / r.height) * dpr);
  }

  function zoomBy(factor, cx, cy) {
    const zoom = Math.min(Math.max(V.zoom * factor, 1 / 64), 64);
    if (cx === undefined) { cx = A.pane.clientWidth / 2; cy = A.pane.clientHeight / 2; }
    V.px = Math.round(cx - (cx - V.px) * zoom / V.zoom);
    V.py = Math.round(cy - (cy - V.py) * zoom / V.zoom);
    V.zoom = zoom;
    applyView();
  }

  for (const P of [A, B]) {
    let drag = null;
    P.pane.addEventListener("pointerdown", ev => {
      if (ev.target === slider) return;
      drag = { x: ev.clientX, y: ev.clientY, px: V.px, py: V.py };
      P.pane.setPointerCapture(ev.pointerId);
      P.pane.classList.add("dragging");
    });
    P.pane.addEventListener("pointermove", ev => {
      if (!drag) return;
      V.px = drag.px + Math.round(ev.clientX - drag.x);
      V.py = drag.py + Math.round(ev.clientY - drag.y);
      applyView();
    });
    const stop = () => { drag = null; P.pane.classList.remove("dragging"); };
    P.pane.addEventListener("pointerup", stop);
    P.pane.addEventListener("pointercancel", stop);
    P.pane.addEventListener("wheel", ev => {
      ev.preventDefault();
      const box = P.pane.getBoundingClientRect();
      zoomBy(ev.deltaY < 0 ? 2 : 0.5, ev.clientX - box.left, ev.clientY - box.top);
    }, { passive: false });
  }

  document.addEventListener("keydown", ev => {
    if (!viewer.classList.contains("open") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    // The k list takes the arrows itself; the split slider and the gain
    // list, once used, must not keep them from choosing k.
    const field = ev.target === kSelect;
    const key = ev.key;
    if (key === "Escape") closeViewer();
    else if (field && key.startsWith("Arrow")) return;
    else if (ev.shiftKey && key.startsWith("Arrow")) {
      const d = 64;
      if (key === "ArrowLeft") V.px += d;
      if (key === "ArrowRight") V.px -= d;
      if (key === "ArrowUp") V.py += d;
      if (key === "ArrowDown") V.py -= d;
      applyView();
    }
    else if (key === "ArrowLeft") stepK(-1);
    else if (key === "ArrowRight") stepK(1);
    else if (key === "f" || key === "F" || key === " ") flip();
    else if (key === "+" || key === "=") zoomBy(2);
    else if (key === "-") zoomBy(0.5);
    else if (key === "0") resetView(1);
    else if (key >= "1" && key <= "4") setMode(MODES[+key - 1][0]);
    else return;
    ev.preventDefault();
  });

  window.addEventListener("resize", () => { if (viewer.classList.contains("open")) applyView(); });
  renderTable();
  drawChart();
  // Test and scripting hook: the state of the viewer, read-only.
  window.kqcodecViewer = () => ({ picture: V.pic === null ? null : pics[V.pic].name,
    k: V.pic === null ? null : current().k,
    searched: V.pic === null ? null : current().target_psnr != null,
    mode: V.mode, zoom: V.zoom, flipped: V.flipped, split: V.split });
})();
