/* cnnzoo report: the architecture diagram, per-layer table and charts of one or more models, drawn as
   SVG from the analyzer's trace embedded in the page (#cnnzoo-data). No libraries, no network. */
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("cnnzoo-data").textContent);
  const FIELDS = {};
  DATA.fields.forEach((f, i) => { FIELDS[f] = i; });
  const SVGNS = "http://www.w3.org/2000/svg";
  const COLORS = {
    conv: "#4e79a7", linear: "#9467bd", matmul: "#9467bd", attention: "#9467bd", pool: "#59a14f",
    norm: "#8c8c8c", act: "#f28e2b", elementwise: "#d4a017", concat: "#e15759", reshape: "#b0b0b0",
    dropout: "#b0b0b0", input: "#333333", other: "#b0b0b0", reduce: "#76b7b2", pad: "#b0b0b0",
    block: "#555555", stage: "#222222",
  };
  const MEASURE = document.createElement("canvas").getContext("2d");

  // helpers -----------------------------------------------------------------------------------------
  function el(tag, attrs, parent, text) {
    const node = document.createElement(tag);
    for (const k in attrs || {}) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  function svg(tag, attrs, parent, text) {
    const node = document.createElementNS(SVGNS, tag);
    for (const k in attrs || {}) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  function textWidth(text, font) {
    MEASURE.font = font;
    return MEASURE.measureText(text).width;
  }
  const int = (n) => n.toLocaleString("en-US");
  function si(n, unit) {
    const units = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (const [scale, u] of units) if (Math.abs(n) >= scale) return (n / scale).toFixed(n / scale >= 100 ? 0 : n / scale >= 10 ? 1 : 2) + " " + u + (unit || "");
    return String(n) + (unit ? " " + unit : "");
  }
  const bytes = (n) => si(n, "B");
  function tint(hex, amount) {
    const v = parseInt(hex.slice(1), 16);
    const mix = (c) => Math.round(c + (255 - c) * amount);
    return `rgb(${mix(v >> 16)},${mix((v >> 8) & 255)},${mix(v & 255)})`;
  }
  function niceTicks(lo, hi, count) {
    if (hi <= lo) hi = lo + 1;
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(+t.toFixed(10));
    return ticks;
  }

  // tooltip: any element with data-tip ---------------------------------------------------------------
  const tip = el("div", { id: "tip" }, document.body);
  document.addEventListener("mousemove", (e) => {
    const target = e.target.closest ? e.target.closest("[data-tip]") : null;
    if (!target) { tip.style.display = "none"; return; }
    tip.textContent = target.getAttribute("data-tip");
    tip.style.display = "block";
    const x = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    tip.style.left = x + "px";
    tip.style.top = (e.clientY + 14) + "px";
  });

  // one model: the item tree ------------------------------------------------------------------------
  class Model {
    constructor(d) {
      this.d = d;
      this.rows = d.rows;
      this.nodes = d.nodes;
      this.parentOf = {};   // item -> parent node index
      this.rowsOf = [];     // node index -> its rows, in order
      d.nodes.forEach((n, k) => {
        const rows = [];
        n.children.forEach((c) => {
          if (c.r !== undefined) { this.parentOf["r" + c.r] = k; rows.push(c.r); }
          else { this.parentOf["n" + c.n] = k; rows.push(...this.rowsOf[c.n]); }
        });
        this.rowsOf[k] = rows;
      });
    }
    row(i, f) { return this.rows[i][FIELDS[f]]; }
    lastRow(item) { return item[0] === "r" ? +item.slice(1) : this.rowsOf[+item.slice(1)].slice(-1)[0]; }
    firstRow(item) { return item[0] === "r" ? +item.slice(1) : this.rowsOf[+item.slice(1)][0]; }
    label(item) {
      if (item[0] === "r") {
        const i = +item.slice(1), name = this.row(i, "name");
        return name === "(model)" ? this.row(i, "type") : name;
      }
      return this.nodes[+item.slice(1)].label;
    }
    shortLabel(k) {  // a module inside another: its name relative to that one ("downsample" in "layer2.0")
      const label = this.nodes[k].label, p = this.parentOf["n" + k];
      const outer = p !== undefined && this.nodes[p].kind === "module" ? this.nodes[p].label + "." : null;
      return outer && label.startsWith(outer) ? label.slice(outer.length) : label;
    }
    towers(item) { return this.row(this.lastRow(item), "towers"); }
    sum(item, f) {
      if (item[0] === "r") return this.row(+item.slice(1), f);
      return this.rowsOf[+item.slice(1)].reduce((s, i) => s + this.row(i, f), 0);
    }
    stageSummary(k) {
      const kids = this.nodes[k].children.map((c) => (c.r !== undefined ? "r" + c.r : "n" + c.n))
        .filter((it) => !(it[0] === "r" && this.row(+it.slice(1), "kind") === "input"));
      if (!kids.length) return "";
      let a = this.label(kids[0]), b = this.label(kids[kids.length - 1]);
      if (kids.length > 1) {  // "features.conv0 … features.relu0" reads "conv0 … relu0"
        let cut = 0;
        for (let i = 0; i < Math.min(a.length, b.length) && a[i] === b[i]; i++) if (a[i] === ".") cut = i + 1;
        if (!/^\d/.test(a.slice(cut)) && !/^\d/.test(b.slice(cut))) { a = a.slice(cut); b = b.slice(cut); }  // not "0 … 2"
      }
      return kids.length === 1 ? a : kids.length === 2 ? a + ", " + b : a + " … " + b;
    }
  }

  // layered layout -----------------------------------------------------------------------------------
  const NODE_GAP = 30, LAYER_GAP = 30, DUMMY_LIMIT = 3000;

  function layout(items, edges, size) {
    const n = items.length;
    const index = new Map(items.map((id, k) => [id, k]));
    const fwd = edges.filter((e) => index.get(e.a) < index.get(e.b));
    const preds = items.map(() => []), succs = items.map(() => []);
    fwd.forEach((e) => { preds[index.get(e.b)].push(index.get(e.a)); succs[index.get(e.a)].push(index.get(e.b)); });
    const layer = new Array(n).fill(0);
    for (let k = 0; k < n; k++) for (const p of preds[k]) layer[k] = Math.max(layer[k], layer[p] + 1);
    for (let k = n - 1; k >= 0; k--) {  // a short branch sits just above where it joins (the papers' figures)
      if (!succs[k].length || !preds[k].length && layer[k] === 0 && k === 0) continue;
      const below = Math.min(...succs[k].map((s) => layer[s])) - 1;
      if (below > layer[k]) layer[k] = below;
    }
    const depth = Math.max(0, ...layer) + 1;
    // vertices: real items, then dummies along long edges
    const V = items.map((id, k) => ({ id, k, layer: layer[k], w: size(id).w, h: size(id).h, dummy: false }));
    const spans = fwd.reduce((s, e) => s + Math.max(0, layer[index.get(e.b)] - layer[index.get(e.a)] - 1), 0);
    // a sparse graph routes long edges through the layers between; a dense one (DenseNet's block, where every
    // layer feeds every later one) draws them as arcs beside the column, as the paper's Figure 1
    const useDummies = spans <= Math.min(DUMMY_LIMIT, 4 * n + 50);
    const adjUp = V.map(() => []), adjDown = V.map(() => []);
    const routes = [];
    for (const e of fwd) {
      const a = index.get(e.a), b = index.get(e.b);
      const path = [a];
      if (useDummies) {
        for (let l = layer[a] + 1; l < layer[b]; l++) {
          V.push({ id: null, layer: l, w: 6, h: 0, dummy: true });
          adjUp.push([]); adjDown.push([]);
          path.push(V.length - 1);
        }
      }
      path.push(b);
      for (let i = 0; i + 1 < path.length; i++) { adjDown[path[i]].push(path[i + 1]); adjUp[path[i + 1]].push(path[i]); }
      routes.push({ e, path, long: !useDummies && layer[b] - layer[a] > 1 });
    }
    const layers = Array.from({ length: depth }, () => []);
    V.forEach((v, i) => layers[v.layer].push(i));
    const pos = new Array(V.length);
    const renumber = () => layers.forEach((L) => L.forEach((v, i) => { pos[v] = i; }));
    renumber();
    for (let sweep = 0; sweep < 4; sweep++) {  // barycentre ordering, down then up
      const order = sweep % 2 === 0 ? layers.map((_, l) => l) : layers.map((_, l) => depth - 1 - l);
      const adj = sweep % 2 === 0 ? adjUp : adjDown;
      for (const l of order) {
        const key = new Map(layers[l].map((v) => [v, adj[v].length ? adj[v].reduce((s, u) => s + pos[u], 0) / adj[v].length : pos[v]]));
        layers[l].sort((a, b) => key.get(a) - key.get(b) || pos[a] - pos[b]);
        layers[l].forEach((v, i) => { pos[v] = i; });
      }
    }
    // x: pack, then pull each vertex towards its neighbours' centre, keeping order and gaps
    const x = new Array(V.length).fill(0);
    const sep = (a, b) => (V[a].w + V[b].w) / 2 + (V[a].dummy || V[b].dummy ? 12 : NODE_GAP);
    layers.forEach((L) => { let c = 0; L.forEach((v, i) => { if (i) c += sep(L[i - 1], v); x[v] = c; }); });
    const weight = (a, b) => (V[a].dummy || V[b].dummy ? 0.35 : 1);
    function place(L, adj) {
      const want = L.map((v) => {
        if (!adj[v].length) return x[v];
        let s = 0, w = 0;
        for (const u of adj[v]) { const q = weight(u, v); s += q * x[u]; w += q; }
        return s / w;
      });
      const left = want.slice(), right = want.slice();
      for (let i = 1; i < L.length; i++) left[i] = Math.max(left[i], left[i - 1] + sep(L[i - 1], L[i]));
      for (let i = L.length - 2; i >= 0; i--) right[i] = Math.min(right[i], right[i + 1] - sep(L[i], L[i + 1]));
      L.forEach((v, i) => { x[v] = (left[i] + right[i]) / 2; });
    }
    for (let it = 0; it < 8; it++) {
      if (it % 2 === 0) for (let l = 1; l < depth; l++) place(layers[l], adjUp);
      else for (let l = depth - 2; l >= 0; l--) place(layers[l], adjDown);
    }
    return { V, layers, x, routes, depth };
  }

  // the diagram -------------------------------------------------------------------------------------
  class Diagram {
    constructor(model, host) {
      this.m = model;
      this.host = host;
      this.expanded = new Set();
      this.bar = el("div", { class: "toolbar" }, host);
      const button = (text, fn, tipText) => { const b = el("button", { type: "button", "data-tip": tipText }, this.bar, text); b.onclick = fn; };
      button("Collapse all", () => { this.expanded.clear(); this.draw(); }, "one box per stage");
      button("Open stages", () => { this.expanded = new Set(model.d.stages); this.draw(); }, "the blocks of every stage");
      button("Open all", () => { this.expanded = new Set(model.nodes.map((_, k) => k)); this.draw(); }, "every layer (large models: a long picture)");
      el("span", { class: "hint" }, this.bar, "Click a box to open it, a frame's title to close it. Hover for figures.");
      this.scroll = el("div", { class: "diagram-scroll" }, host);
    }
    visible() {
      const out = [], rep = {};
      const walk = (k) => {
        for (const c of this.m.nodes[k].children) {
          if (c.r !== undefined) { out.push("r" + c.r); rep[c.r] = "r" + c.r; }
          else if (this.expanded.has(c.n)) walk(c.n);
          else { out.push("n" + c.n); this.m.rowsOf[c.n].forEach((i) => { rep[i] = "n" + c.n; }); }
        }
      };
      for (const s of this.m.d.stages) {
        if (this.expanded.has(s)) walk(s);
        else { out.push("n" + s); this.m.rowsOf[s].forEach((i) => { rep[i] = "n" + s; }); }
      }
      return { items: out, rep };
    }
    edges(rep) {
      const m = this.m, found = new Map();
      m.rows.forEach((row) => {
        const r = row[FIELDS.index], b = rep[r];
        if (b === undefined) return;
        const inputs = row[FIELDS.inputs];
        const tb = row[FIELDS.towers];
        inputs.forEach((i, k) => {
          const a = rep[i];
          if (a === undefined || a === b) return;
          const key = a + ">" + b;
          if (!found.has(key)) found.set(key, { a, b, pairs: new Set() });
          const e = found.get(key), ta = m.row(i, "towers");
          const TA = m.towers(a), TB = m.towers(b);
          const src = (t) => (ta === TA ? [t] : [...Array(TA).keys()]);
          const dst = (t) => (tb === TB ? [t] : [...Array(TB).keys()]);
          let pairs = [];
          if (row[FIELDS.kind] === "concat" && tb > 1 && tb === inputs.length) pairs = [[0, k]];
          else if (ta === tb) for (let t = 0; t < ta; t++) pairs.push([t, t]);
          else for (let s = 0; s < ta; s++) for (let t = 0; t < tb; t++) pairs.push([s, t]);
          for (const [s, t] of pairs) for (const s2 of src(s)) for (const t2 of dst(t)) e.pairs.add(s2 + ":" + t2);
        });
      });
      return [...found.values()];
    }
    nodeText(item) {
      const m = this.m;
      if (item[0] === "r") {
        const i = +item.slice(1);
        const kernel = m.row(i, "kernel");
        const type = m.row(i, "type");
        return { title: kernel ? type + " " + kernel : type, sub: m.row(i, "output") || " ", kind: m.row(i, "kind") };
      }
      const k = +item.slice(1), node = m.nodes[k], last = m.lastRow(item);
      const n = m.rowsOf[k].length;
      if (node.kind === "stage") {
        return { title: node.label + (m.stageSummary(k) ? ": " + m.stageSummary(k) : ""),
                 sub: `${m.row(last, "output")} · ${si(m.sum(item, "macs"))}MACs · ${si(m.sum(item, "params"))} params`, kind: "stage" };
      }
      return { title: m.shortLabel(k) + (node.type ? " · " + node.type : ""), sub: `${m.row(last, "output")} · ${n} ops`, kind: "block" };
    }
    size(item) {
      const t = this.nodeText(item);
      const big = t.kind === "stage";
      const towers = this.m.towers(item);
      const { volume, caption } = towerSub(t.sub, towers);
      const w1 = Math.max(textWidth(t.title, (big ? "600 13px" : "600 12px") + " system-ui, sans-serif"),
                          textWidth(volume, "11px system-ui, sans-serif")) + 30;
      const room = item[0] === "n" ? 16 : 0;  // the "+" of a closed container
      const w = towers > 1 ? towers * Math.max(w1 + room, 90) + (towers - 1) * 8 : Math.max(w1 + room, 70);
      return { w: Math.max(w, textWidth(caption, "11px system-ui, sans-serif") + 20), h: (big ? 46 : 38) + (caption ? CAPTION_H : 0) };
    }
    tipText(item) {
      const m = this.m, last = m.lastRow(item);
      const lines = [];
      if (item[0] === "r") {
        const i = +item.slice(1);
        lines.push(`${m.row(i, "name")}  (${m.row(i, "type")})`, `output ${m.row(i, "output")}`);
        if (m.row(i, "kernel")) lines.push(`kernel ${m.row(i, "kernel")}`);
        if (m.row(i, "towers") > 1) lines.push(`${m.row(i, "towers")} towers (groups=${m.row(i, "groups")})`);
      } else {
        const k = +item.slice(1);
        lines.push(`${m.nodes[k].label}${m.nodes[k].type ? "  (" + m.nodes[k].type + ")" : ""}: ${m.rowsOf[k].length} operations`,
                   `output ${m.row(last, "output")}`, "click to open");
      }
      lines.push(`params ${int(m.sum(item, "params"))}`, `MACs ${int(m.sum(item, "macs"))}`,
                 `memory ${int(m.sum(item, "mem"))} values`);
      if (m.row(last, "rf")) lines.push(`receptive field ${m.row(last, "rf")}, jump ${m.row(last, "jump")}`);
      return lines.join("\n");
    }
    draw() {
      const m = this.m;
      const { items, rep } = this.visible();
      const edges = this.edges(rep);
      const sizes = new Map(items.map((it) => [it, this.size(it)]));
      const L = layout(items, edges, (it) => sizes.get(it));
      // clusters: the open containers, with the layers they span
      const layerOf = new Map(L.V.filter((v) => !v.dummy).map((v, i) => [v.id, i]));
      const clusters = [];
      const openOf = (item) => {  // the open ancestors of an item, innermost first
        const out = [];
        let p = m.parentOf[item];
        while (p !== undefined) { if (this.expanded.has(p)) out.push(p); p = m.parentOf["n" + p]; }
        return out;
      };
      const members = new Map();
      items.forEach((it) => openOf(it).forEach((c, depth) => {
        if (!members.has(c)) members.set(c, []);
        members.get(c).push(it);
      }));
      members.forEach((its, c) => {
        const ls = its.map((it) => L.V[layerOf.get(it)].layer);
        let depth = 0;
        for (let p = m.parentOf["n" + c]; p !== undefined; p = m.parentOf["n" + p]) depth++;
        clusters.push({ c, its, top: Math.min(...ls), bottom: Math.max(...ls), depth });
      });
      // vertical room for the frames' titles
      const above = new Array(L.depth).fill(0), below = new Array(L.depth).fill(0);
      clusters.forEach((cl) => { above[cl.top] += 1; below[cl.bottom] += 1; });
      const layerH = L.layers.map((ids) => Math.max(0, ...ids.map((v) => L.V[v].h)));
      const y = [];
      let cy = 16;
      for (let l = 0; l < L.depth; l++) {
        cy += above[l] * 22;
        y.push(cy);
        cy += layerH[l] + LAYER_GAP + below[l] * 10;
      }
      const minX = Math.min(...L.V.map((v, i) => L.x[i] - v.w / 2));
      const maxDepthPad = 10 * (1 + Math.max(0, ...clusters.map((c) => c.depth)));
      const X = (i) => L.x[i] - minX + 20 + maxDepthPad + 8 * clusters.length ** 0;
      const arcs = L.routes.some((r) => r.long) ? 270 : 0;
      const width = Math.max(...L.V.map((v, i) => X(i) + v.w / 2)) + 40 + maxDepthPad + arcs;
      const height = cy + 10;
      const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "diagram", "data-model": m.d.model });
      const defs = svg("defs", {}, root);
      const marker = svg("marker", { id: "arrow-" + this.uid(), viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
      svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#666" }, marker);
      // frames of open containers, outer first
      const topRank = {};
      clusters.sort((a, b) => a.depth - b.depth).forEach((cl) => {
        const key = cl.top;
        topRank[key] = (topRank[key] || 0) + 1;
        const rank = above[cl.top] - topRank[key];  // inner frames sit closer to their nodes
        const xs = cl.its.map((it) => { const v = layerOf.get(it); return [X(v) - L.V[v].w / 2, X(v) + L.V[v].w / 2]; });
        const inner = Math.max(0, ...clusters.filter((o) => o.depth > cl.depth && o.its.every((it) => cl.its.includes(it))).map((o) => o.depth - cl.depth));
        const pad = 8 + 8 * inner;
        const x0 = Math.min(...xs.map((p) => p[0])) - pad, x1 = Math.max(...xs.map((p) => p[1])) + pad;
        const y0 = y[cl.top] - 20 - rank * 22, y1 = y[cl.bottom] + layerH[cl.bottom] + 6 + (below[cl.bottom] - 1) * 8;
        const node = m.nodes[cl.c];
        const g = svg("g", { class: "frame", "data-key": node.key, "data-kind": node.kind }, root);
        svg("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, rx: 8, class: node.kind === "stage" ? "frame-stage" : "frame-block" }, g);
        const title = svg("text", { x: x0 + 8, y: y0 + 14, class: "frame-title", "data-tip": "click to close" }, g,
                          "− " + (node.kind === "stage" ? node.label : m.shortLabel(cl.c)) + (node.type ? " · " + node.type : "") + (node.kind === "stage" ? ": " + m.stageSummary(cl.c) : ""));
        title.addEventListener("click", () => { this.close(cl.c); });
      });
      // edges
      const gEdges = svg("g", { class: "edges" }, root);
      const towerX = (v, t, count) => {
        if (count <= 1) return X(v);
        const w = L.V[v].w, tw = (w - (count - 1) * 8) / count;
        return X(v) - w / 2 + tw / 2 + t * (tw + 8);
      };
      for (const route of L.routes) {
        const a = route.path[0], b = route.path[route.path.length - 1];
        const TA = m.towers(route.e.a), TB = m.towers(route.e.b);
        const pairs = [...route.e.pairs].map((p) => p.split(":").map(Number));
        if (!pairs.length) pairs.push([0, 0]);
        for (const [s, t] of pairs) {
          const pts = route.path.map((v, i) => {
            if (i === 0) return [towerX(v, s, TA), y[L.V[v].layer] + L.V[v].h];
            if (i === route.path.length - 1) return [towerX(v, t, TB), y[L.V[v].layer]];
            return [X(v), y[L.V[v].layer] + layerH[L.V[v].layer] / 2];
          });
          let d = `M${pts[0][0]},${pts[0][1]}`;
          if (route.long) {  // an arc beside the column, from the right of one box to the right of the other
            const ya = y[L.V[a].layer] + L.V[a].h / 2, yb = y[L.V[b].layer] + L.V[b].h / 2;
            const xa = X(a) + L.V[a].w / 2, xb = X(b) + L.V[b].w / 2;
            const side = Math.max(xa, xb) + Math.min(260, 16 + 5 * (L.V[b].layer - L.V[a].layer));
            d = `M${xa},${ya} C${side},${ya} ${side},${yb} ${xb},${yb}`;
          } else {
            for (let i = 1; i < pts.length; i++) {
              const [x0, y0] = pts[i - 1], [x1, y1] = pts[i];
              const my = (y0 + y1) / 2;
              d += ` C${x0},${my} ${x1},${my} ${x1},${y1}`;
            }
          }
          const cross = TA > 1 && TB > 1 && s !== t;
          svg("path", { d, class: cross ? "edge edge-cross" : "edge", "marker-end": `url(#arrow-${this.uid()})`,
                        "data-from": route.e.a, "data-to": route.e.b }, gEdges);
        }
      }
      // nodes
      const gNodes = svg("g", { class: "nodes" }, root);
      items.forEach((it) => {
        const v = layerOf.get(it), V = L.V[v];
        const t = this.nodeText(it);
        const color = COLORS[t.kind] || COLORS.other;
        const attrs = { class: "node node-" + t.kind, "data-tip": this.tipText(it), "data-kind": t.kind };
        if (it[0] === "r") attrs["data-row"] = it.slice(1);
        else attrs["data-key"] = m.nodes[+it.slice(1)].key;
        const g = svg("g", attrs, gNodes);
        const x0 = X(v) - V.w / 2, y0 = y[V.layer];
        const count = m.towers(it);
        const tw = (V.w - (count - 1) * 8) / count;
        const { volume, caption } = towerSub(t.sub, count);
        const h = caption ? V.h - CAPTION_H : V.h;
        for (let k = 0; k < count; k++) {
          const rx = x0 + k * (tw + 8);
          svg("rect", { x: rx, y: y0, width: tw, height: h, rx: t.kind === "stage" || t.kind === "block" ? 7 : 4,
                        fill: t.kind === "stage" || t.kind === "block" ? "#ffffff" : tint(color, 0.82), stroke: color,
                        class: t.kind === "stage" || t.kind === "block" ? "box box-open" : "box" }, g);
          const cx = rx + tw / 2;
          svg("text", { x: cx, y: y0 + (t.kind === "stage" ? 19 : 16), class: t.kind === "stage" ? "t1 t-stage" : "t1" }, g, t.title);
          svg("text", { x: cx, y: y0 + h - (t.kind === "stage" ? 11 : 9), class: "t2" }, g, volume);
        }
        if (caption) svg("text", { x: X(v), y: y0 + V.h - 3, class: "t2 tower-caption" }, g, caption);
        if (it[0] === "n") {
          svg("text", { x: x0 + V.w - 9, y: y0 + 13, class: "plus" }, g, "+");
          g.addEventListener("click", () => { this.open(+it.slice(1)); });
        }
      });
      this.scroll.replaceChildren(root);
      this.host.setAttribute("data-visible", items.length);
      updateStatus();
    }
    uid() { if (!this._uid) this._uid = Math.random().toString(36).slice(2, 8); return this._uid; }
    open(k) { this.expanded.add(k); this.draw(); }
    close(k) {
      const drop = (n) => { this.expanded.delete(n); this.m.nodes[n].children.forEach((c) => { if (c.n !== undefined) drop(c.n); }); };
      drop(k);
      this.draw();
    }
    openKeys(keys) {
      const byKey = new Map(this.m.nodes.map((n, k) => [n.key, k]));
      for (const key of keys) {
        if (key === "stages") this.m.d.stages.forEach((s) => this.expanded.add(s));
        else if (key === "all") this.m.nodes.forEach((_, k) => this.expanded.add(k));
        else if (byKey.has(key)) {
          for (let k = byKey.get(key); k !== undefined; k = this.m.parentOf["n" + k]) this.expanded.add(k);
        }
      }
    }
  }

  const CAPTION_H = 15;
  function towerSub(sub, count) {
    // a box's second line over `count` towers: each tower shows its share of the volume ("256x27x27" over 2
    // towers: "128x27x27"); a container's MACs and params are its whole figures, written once below its towers
    if (count <= 1) return { volume: sub, caption: "" };
    const [volume, ...rest] = sub.split(" · ");
    const m = /^(\d+)(x.*)$/.exec(volume);
    return { volume: m && +m[1] % count === 0 ? +m[1] / count + m[2] : volume,
             caption: rest.length ? rest.join(" · ") + ` (${count} towers together)` : "" };
  }

  // the per-layer table -----------------------------------------------------------------------------
  const COLUMNS = [
    ["#", "index", "num"], ["layer", "name", "text"], ["type", "type", "text"], ["output", "output", "text"],
    ["kernel", "kernel", "text"], ["params", "params", "num"], ["memory (values)", "mem", "num"],
    ["MACs", "macs", "num"], ["FLOPs", "flops", "num"], ["RF", "rf", "rf"], ["jump", "jump", "rf"], ["stage", "stage", "stage"],
  ];
  const SUMMED = ["params", "mem", "macs", "flops"];

  class Table {
    constructor(model, host, compact) {
      this.m = model;
      this.stageNames = model.d.stages.map((s) => model.nodes[s].label);
      this.sortKey = "index";
      this.sortDir = 1;
      const bar = el("div", { class: "toolbar" }, host);
      this.filter = el("input", { type: "search", placeholder: "filter: name, type, kernel…", class: "filter" }, bar);
      this.stage = el("select", { class: "stage-filter" }, bar);
      el("option", { value: "" }, this.stage, "all stages");
      this.stageNames.forEach((s, k) => el("option", { value: k }, this.stage, s));
      this.count = el("span", { class: "hint" }, bar);
      this.filter.oninput = () => this.fill();
      this.stage.onchange = () => this.fill();
      const wrap = el("div", { class: compact ? "table-wrap compact" : "table-wrap" }, host);
      this.table = el("table", { class: "layers", "data-model": model.d.model }, wrap);
      const head = el("tr", {}, el("thead", {}, this.table));
      COLUMNS.forEach(([title, key, type]) => {
        const th = el("th", { class: type === "num" ? "num" : "", "data-tip": "click to sort" }, head, title);
        th.onclick = () => { this.sortDir = this.sortKey === key ? -this.sortDir : (type === "num" ? -1 : 1); this.sortKey = key; this.fill(); };
      });
      this.body = el("tbody", {}, this.table);
      const foot = el("tfoot", {}, this.table);
      this.shown = el("tr", { class: "shown" }, foot);
      const total = el("tr", { class: "total" }, foot);
      COLUMNS.forEach(([, key]) => {
        if (SUMMED.includes(key)) {
          const sum = model.rows.reduce((s, r) => s + r[FIELDS[key]], 0);
          el("td", { class: "num", "data-total": key, "data-value": sum }, total, int(sum));
        } else el("td", {}, total, key === "name" ? "total (all rows)" : "");
      });
      this.fill();
    }
    match(r) {
      const q = this.filter.value.trim().toLowerCase();
      if (this.stage.value !== "" && String(r[FIELDS.stage]) !== this.stage.value) return false;
      if (!q) return true;
      return ["name", "type", "kernel", "output", "kind"].some((f) => String(r[FIELDS[f]]).toLowerCase().includes(q));
    }
    fill() {
      const f = FIELDS[this.sortKey], dir = this.sortDir;
      const num = (v) => (typeof v === "number" ? v : parseFloat(v) || (v === "all" ? Infinity : -1));
      const rows = this.m.rows.filter((r) => this.match(r));
      const type = COLUMNS.find((c) => c[1] === this.sortKey)[2];
      rows.sort((a, b) => {
        const x = a[f], y = b[f];
        const c = type === "text" ? String(x).localeCompare(String(y)) : num(x) - num(y);
        return c * dir || a[0] - b[0];
      });
      const frag = document.createDocumentFragment();
      for (const r of rows) {
        const tr = el("tr", { "data-kind": r[FIELDS.kind] }, frag);
        COLUMNS.forEach(([, key, type]) => {
          let v = r[FIELDS[key]];
          if (key === "stage") v = v >= 0 ? this.stageNames[v] : "";
          else if (key === "mem" && !v && r[FIELDS.note]) v = r[FIELDS.note];
          else if (type === "num") v = int(v);
          const td = el("td", { class: type === "num" ? "num" : "" }, tr, v);
          if (key === "type") td.style.borderLeft = "4px solid " + (COLORS[r[FIELDS.kind]] || COLORS.other);
        });
      }
      this.body.replaceChildren(frag);
      this.shown.replaceChildren();
      COLUMNS.forEach(([, key]) => {
        if (SUMMED.includes(key)) el("td", { class: "num" }, this.shown, int(rows.reduce((s, r) => s + r[FIELDS[key]], 0)));
        else el("td", {}, this.shown, key === "name" ? `shown (${rows.length} of ${this.m.rows.length} rows)` : "");
      });
      this.count.textContent = `${rows.length} of ${this.m.rows.length} rows`;
    }
  }

  // charts -----------------------------------------------------------------------------------------
  function frame(host, title, w, h, margin) {
    const box = el("figure", { class: "chart" }, host);
    el("figcaption", {}, box, title);
    const root = svg("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}` }, box);
    return { box, root, m: margin || { l: 64, r: 16, t: 10, b: 40 }, w, h };
  }
  function axis(f, scale, ticks, horizontal, label, fmt) {
    const { root, m, w, h } = f;
    const g = svg("g", { class: "axis" }, root);
    for (const t of ticks) {
      const p = scale(t);
      if (horizontal) {
        svg("line", { x1: p, x2: p, y1: h - m.b, y2: h - m.b + 4 }, g);
        svg("text", { x: p, y: h - m.b + 16, "text-anchor": "middle" }, g, fmt(t));
      } else {
        svg("line", { x1: m.l, x2: w - m.r, y1: p, y2: p, class: "grid" }, g);
        svg("text", { x: m.l - 6, y: p + 4, "text-anchor": "end" }, g, fmt(t));
      }
    }
    if (horizontal) svg("text", { x: (m.l + w - m.r) / 2, y: h - 6, "text-anchor": "middle", class: "label" }, g, label);
    else svg("text", { x: 12, y: (m.t + h - m.b) / 2, transform: `rotate(-90 12 ${(m.t + h - m.b) / 2})`, "text-anchor": "middle", class: "label" }, g, label);
  }
  function linear(d0, d1, r0, r1) { return (v) => r0 + (v - d0) / (d1 - d0 || 1) * (r1 - r0); }

  function notCalled(t) {  // "aux1, aux2 (6,379,984 params)": what the traced pass never called, or ""
    return t.unused_params ? `${t.unused_modules.join(", ")} (${int(t.unused_params)} params)` : "";
  }

  function barsPerLayer(model, host) {
    // layers of the traced graph only: modules it never calls (auxiliary heads in eval) are not its layers
    const rows = model.rows.filter((r) => r[FIELDS.kind] !== "unused" && (r[FIELDS.mem] || r[FIELDS.params]));
    const bw = Math.max(3, Math.min(36, 900 / rows.length));
    const w = Math.max(640, rows.length * bw + 90);
    for (const [key, title, color, unit] of [["mem", "Activation memory per layer (values per sample): memory is early", COLORS.conv, "values"],
                                              ["params", "Parameters per layer: parameters are late", COLORS.act, "params"]]) {
      const f = frame(host, title, w, 190, { l: 64, r: 16, t: 10, b: 26 });
      f.box.classList.add("wide");
      const max = Math.max(1, ...rows.map((r) => r[FIELDS[key]]));
      const sy = linear(0, max, f.h - f.m.b, f.m.t);
      axis(f, sy, niceTicks(0, max, 4), false, unit, (v) => si(v));
      const g = svg("g", {}, f.root);
      rows.forEach((r, i) => {
        const v = r[FIELDS[key]];
        const x = f.m.l + i * bw;
        svg("rect", { x: x + 0.5, y: sy(v), width: Math.max(1, bw - 1), height: f.h - f.m.b - sy(v), fill: color,
                      "data-tip": `${r[FIELDS.name]} (${r[FIELDS.type]})\n${int(v)} ${unit}\noutput ${r[FIELDS.output]}` }, g);
      });
      svg("text", { x: f.m.l, y: f.h - 8, class: "label" }, f.root, "layers in order (hover a bar) →");
      if (key === "params" && notCalled(model.d.totals)) {
        el("p", { class: "hint not-called" }, f.box, `Not called by the ${model.d.training ? "training" : "eval"} graph, left off: ${notCalled(model.d.totals)}`);
      }
    }
  }

  function macsPerStage(model, host) {
    const stages = model.d.stages.map((s) => ({ name: model.nodes[s].label + "  " + model.stageSummary(s),
      macs: model.sum("n" + s, "macs"), params: model.sum("n" + s, "params"), out: model.row(model.lastRow("n" + s), "output") }));
    const total = stages.reduce((s, x) => s + x.macs, 0) || 1;
    const w = 640, rowH = 26, f = frame(host, "MACs per stage", w, stages.length * rowH + 50, { l: 230, r: 90, t: 8, b: 34 });
    const max = Math.max(1, ...stages.map((s) => s.macs));
    const sx = linear(0, max, f.m.l, w - f.m.r);
    axis(f, sx, niceTicks(0, max, 4), true, "MACs", (v) => si(v));
    stages.forEach((s, i) => {
      const y = f.m.t + i * rowH;
      svg("text", { x: f.m.l - 8, y: y + 16, "text-anchor": "end", class: "bar-label" }, f.root, s.name.length > 34 ? s.name.slice(0, 33) + "…" : s.name);
      svg("rect", { x: f.m.l, y: y + 4, width: Math.max(1, sx(s.macs) - f.m.l), height: rowH - 8, fill: COLORS.conv,
                    "data-tip": `${s.name}\n${int(s.macs)} MACs (${(100 * s.macs / total).toFixed(1)}%)\n${int(s.params)} params\noutput ${s.out}` }, f.root);
      svg("text", { x: sx(s.macs) + 6, y: y + 16, class: "bar-value" }, f.root, `${si(s.macs)} · ${(100 * s.macs / total).toFixed(0)}%`);
    });
  }

  function receptiveField(model, host) {
    const pts = model.rows.filter((r) => r[FIELDS.rf_num] !== null && (r[FIELDS.kind] === "conv" || r[FIELDS.kind] === "pool"));
    if (!pts.length) return;
    const size = Math.max(...model.d.input_size.slice(1));
    const w = 640, f = frame(host, "Receptive field against depth (conv and pool layers)", w, 260);
    const maxY = 1.12 * Math.max(size, ...pts.map((r) => r[FIELDS.rf_num]));
    const sx = linear(1, Math.max(2, pts.length), f.m.l, w - f.m.r), sy = linear(0, maxY, f.h - f.m.b, f.m.t);
    axis(f, sy, niceTicks(0, maxY, 5), false, "receptive field (pixels)", (v) => int(v));
    axis(f, sx, niceTicks(1, pts.length, 6).filter((t) => t >= 1), true, "conv / pool layers, in order", (v) => int(v));
    svg("line", { x1: f.m.l, x2: w - f.m.r, y1: sy(size), y2: sy(size), class: "ref" }, f.root);
    svg("text", { x: w - f.m.r - 4, y: sy(size) - 5, "text-anchor": "end", class: "ref-label" }, f.root, `input ${size} px`);
    svg("polyline", { points: pts.map((r, i) => `${sx(i + 1)},${sy(r[FIELDS.rf_num])}`).join(" "), class: "line" }, f.root);
    pts.forEach((r, i) => svg("circle", { cx: sx(i + 1), cy: sy(r[FIELDS.rf_num]), r: 3.2, fill: COLORS[r[FIELDS.kind]],
      "data-tip": `${r[FIELDS.name]} (${r[FIELDS.type]} ${r[FIELDS.kernel]})\nRF ${r[FIELDS.rf]}, jump ${r[FIELDS.jump]}` }, f.root));
  }

  function trainingMemory(model, host) {
    const d = model.d, t = d.totals, b = d.memory.bytes_per_value;
    const box = el("div", { class: "chart-group" }, host);
    const bar = el("div", { class: "toolbar" }, box);
    el("label", {}, bar, "optimiser ");
    const select = el("select", { class: "optimizer" }, bar);
    Object.keys(d.memory.optimizer_states).forEach((o) => {
      const opt = el("option", { value: o }, select, `${o} (${d.memory.optimizer_states[o]} state${d.memory.optimizer_states[o] === 1 ? "" : "s"} / param)`);
      if (o === d.memory.optimizer) opt.selected = true;
    });
    const host2 = el("div", {}, box);
    const draw = () => {
      host2.replaceChildren();
      const k = d.memory.optimizer_states[select.value];
      const batches = [1, 32, 64, 96, 128, 160, 192, 224, 256];
      const parts = [["weights", (t.params + t.buffers) * b, "#8c8c8c"], ["gradients", t.trainable * b, "#e15759"],
                     ["optimiser state", k * t.trainable * b, "#f28e2b"]];
      const w = 640, f = frame(host2, `Training memory against batch size (${select.value}, ${d.dtype}; an estimate)`, w, 280);
      const fixed = parts.reduce((s, p) => s + p[1], 0);
      const maxY = fixed + 256 * t.activation_bytes;
      const sx = linear(0, 256, f.m.l, w - f.m.r), sy = linear(0, maxY, f.h - f.m.b, f.m.t);
      axis(f, sy, niceTicks(0, maxY, 5), false, "bytes", (v) => bytes(v));
      axis(f, sx, [1, 32, 64, 128, 192, 256], true, "batch size", (v) => String(v));
      let base = batches.map(() => 0);
      const layers = [...parts.map(([name, v, color]) => [name, batches.map(() => v), color]),
                      ["activations", batches.map((B) => B * t.activation_bytes), COLORS.conv]];
      for (const [name, vals, color] of layers) {
        const top = vals.map((v, i) => base[i] + v);
        const pts = batches.map((B, i) => `${sx(B)},${sy(top[i])}`).concat(batches.map((B, i) => `${sx(B)},${sy(base[i])}`).reverse());
        svg("polygon", { points: pts.join(" "), fill: tint(color, 0.35), stroke: color, "data-tip": `${name}: ${bytes(vals[0])}${name === "activations" ? " per sample" : ""}` }, f.root);
        base = top;
      }
      batches.forEach((B, i) => svg("circle", { cx: sx(B), cy: sy(base[i]), r: 3, fill: "#222",
        "data-tip": `batch ${B}: ~${bytes(base[i])}\nweights ${bytes(parts[0][1])} + gradients ${bytes(parts[1][1])} + optimiser ${bytes(parts[2][1])} + activations ${bytes(B * t.activation_bytes)}` }, f.root));
      const legend = el("div", { class: "legend" }, f.box);
      for (const [name, , color] of layers) { const s = el("span", {}, legend); el("i", { style: `background:${color}` }, s); s.append(name); }
    };
    select.onchange = draw;
    draw();
  }

  // compare: top-1 against GMACs -------------------------------------------------------------------
  function bubbles(models, host, xKind) {
    const byTime = xKind === "ms";
    const pts = models.filter((m) => m.d.info.top1 !== null && m.d.info.top1 !== undefined && (!byTime || m.d.info.measured));
    const missing = models.filter((m) => !pts.includes(m)).map((m) => m.d.model);
    const w = 820, f = frame(host, `ImageNet top-1 against ${byTime ? "measured time" : "GMACs"}; bubble area = parameters (hover a bubble)`, w, 420, { l: 64, r: 30, t: 20, b: 44 });
    f.box.classList.add("wide");
    f.box.setAttribute("data-x", xKind || "gmacs");
    if (!pts.length) { el("p", { class: "hint" }, f.box, "None of these models has a reference top-1."); return; }
    const timed = pts.filter((m) => m.d.info.measured);
    let axisKind = f.box.getAttribute("data-x") || "gmacs";
    if (timed.length) {  // measured forward time instead of GMACs, as Canziani et al.'s chart
      const bar = el("div", { class: "toolbar" });
      f.box.insertBefore(bar, f.root);
      el("label", {}, bar, "x axis ");
      const pick = el("select", { class: "x-axis" }, bar);
      el("option", { value: "gmacs" }, pick, "GMACs (counted)");
      const m0 = timed[0].d.info.measured;
      el("option", { value: "ms" }, pick, `ms per image (measured, batch ${m0.batch}, ${m0.device_name || ""})`);
      pick.value = axisKind;
      pick.onchange = () => { host.replaceChildren(); bubbles(models, host, pick.value); };
    }
    const g = axisKind === "ms" ? (m) => (m.d.info.measured ? m.d.info.measured.infer_img_ms : 0) : (m) => m.d.totals.macs / 1e9;
    const xs = pts.map(g), ys = pts.map((m) => m.d.info.top1);
    const x0 = 0, x1 = Math.max(...xs) * 1.12 || 1;
    const y0 = Math.floor(Math.min(...ys) - 3), y1 = Math.ceil(Math.max(...ys) + 3);
    const sx = linear(x0, x1, f.m.l, w - f.m.r), sy = linear(y0, y1, f.h - f.m.b, f.m.t);
    axis(f, sy, niceTicks(y0, y1, 6), false, "top-1 (%)", (v) => String(v));
    axis(f, sx, niceTicks(x0, x1, 8), true, byTime ? "ms per image (measured)" : "GMACs per image", (v) => String(v));
    const maxP = Math.max(...pts.map((m) => m.d.totals.graph_params));
    const palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
    pts.sort((a, b) => b.d.totals.graph_params - a.d.totals.graph_params).forEach((m, i) => {
      const r = 4 + 36 * Math.sqrt(m.d.totals.graph_params / maxP);
      const t = m.d.totals;
      const c = palette[models.indexOf(m) % palette.length];
      svg("circle", { cx: sx(g(m)), cy: sy(m.d.info.top1), r, fill: c, "fill-opacity": 0.45, stroke: c, class: "bubble", "data-model": m.d.model,
        "data-tip": `${m.d.model} at ${m.d.input}\ntop-1 ${m.d.info.top1}%\n${int(t.macs)} MACs (${(t.macs / 1e9).toFixed(2)} G)\n${int(t.graph_params)} params` + (notCalled(t) ? ` (+ ${notCalled(t)}, not called)` : "") +
        `\n${bytes(t.activation_bytes)} activations / sample` + measuredText(m) }, f.root);
      svg("text", { x: sx(g(m)), y: sy(m.d.info.top1) - r - 4, "text-anchor": "middle", class: "bubble-label" }, f.root, m.d.model);
    });
    if (missing.length) el("p", { class: "hint" }, f.box, `No reference top-1${byTime ? " or no measured time" : ""}, left off the chart: ` + missing.join(", "));
  }

  function measuredText(m) {
    const x = m.d.info.measured;
    if (!x) return "";
    return `\nmeasured: ${x.infer_img_ms.toFixed(3)} ms / image, ${int(Math.round(x.infer_samples_per_sec))} images/s` +
           ` (batch ${x.batch}, ${x.device_name || "?"}, ${x.precision || ""}${x.engine ? ", " + x.engine : ""})`;
  }

  function compareTable(models, host) {
    const t = el("table", { class: "layers compare" }, host);
    const head = el("tr", {}, el("thead", {}, t));
    const timed = models.some((m) => m.d.info.measured);
    const heads = ["model", "input", "params", "GMACs", "activations / sample", "RF", "top-1"];
    if (timed) heads.push("ms / image", "images / s");
    heads.forEach((h, i) => el("th", { class: i > 1 ? "num" : "" }, head, h));
    const body = el("tbody", {}, t);
    for (const m of models) {
      const x = m.d.totals, tr = el("tr", {}, body), z = m.d.info.measured;
      [m.d.model, m.d.input].forEach((v) => el("td", {}, tr, v));
      const cells = [int(x.graph_params) + (x.unused_params ? ` (+ ${int(x.unused_params)} not called)` : ""), (x.macs / 1e9).toFixed(3), bytes(x.activation_bytes), x.rf, m.d.info.top1 ?? "—"];
      if (timed) cells.push(z ? z.infer_img_ms.toFixed(3) : "—", z ? int(Math.round(z.infer_samples_per_sec)) : "—");
      cells.forEach((v) => el("td", { class: "num" }, tr, v));
    }
  }

  // the page ---------------------------------------------------------------------------------------
  function header(model, host) {
    const d = model.d, t = d.totals, info = d.info;
    const h = el("header", {}, host);
    el("h1", {}, h, d.model);
    const facts = [`input ${d.input}`, d.dtype, d.training ? "training graph" : "eval graph"];
    if (info.paper) facts.push(`${info.paper}${info.year ? " (" + info.year + ")" : ""}`);
    if (info.weights) facts.push("weights " + info.weights);
    el("p", { class: "facts" }, h, facts.join(" · "));
    if (info.notes) el("p", { class: "facts notes" }, h, "notes: " + info.notes);
    const cards = el("div", { class: "cards" }, h);
    const card = (name, value, sub) => { const c = el("div", { class: "card" }, cards); el("b", {}, c, value); el("span", {}, c, name); if (sub) el("small", {}, c, sub); };
    if (t.unused_params) {  // the graph's own, and those of modules it never calls (GoogLeNet's aux heads in eval)
      card("parameters", si(t.graph_params), `${int(t.graph_params)}; ${int(t.params)} with ${t.unused_modules.join(", ")} (not called)`);
    } else card("parameters", si(t.params), int(t.params));
    card("MACs", si(t.macs), int(t.macs));
    card("FLOPs", si(t.flops), int(t.flops));
    card("activations / sample", bytes(t.activation_bytes), int(t.activation_elements) + " values");
    if (t.rf) card("receptive field", t.rf, "jump " + t.rf_jump);
    if (info.top1 !== null && info.top1 !== undefined) card("ImageNet top-1", info.top1 + "%", info.source || "");
    if (info.measured) card("measured forward", info.measured.infer_img_ms.toFixed(2) + " ms / image", measuredText(model).trim().replace(/^measured: /, ""));
  }

  function section(host, title, id) {
    const s = el("section", { id }, host);
    el("h2", {}, s, title);
    return s;
  }

  const diagrams = [];
  function updateStatus() {
    const status = document.getElementById("cnnzoo-status");
    if (!status) return;
    status.setAttribute("data-ready", "1");
    status.setAttribute("data-diagrams", diagrams.length);
  }

  function hashKeys() {
    const m = /(?:^|[#&])expand=([^&]*)/.exec(location.hash);
    return m ? decodeURIComponent(m[1]).split(",").filter(Boolean) : [];
  }

  function single(d, host) {
    const model = new Model(d);
    header(model, host);
    const nav = el("nav", {}, host);
    [["diagram", "Architecture"], ["table", "Layers"], ["charts", "Charts"]].forEach(([id, t]) => el("a", { href: "#" + id }, nav, t));
    const dia = new Diagram(model, section(host, "Architecture", "diagram"));
    diagrams.push(dia);
    dia.openKeys(hashKeys());
    dia.draw();
    new Table(model, section(host, "Layers", "table"));
    const charts = el("div", { class: "charts" }, section(host, "Charts", "charts"));
    barsPerLayer(model, charts);
    macsPerStage(model, charts);
    receptiveField(model, charts);
    trainingMemory(model, charts);
  }

  function compare(list, host) {
    const models = list.map((d) => new Model(d));
    const h = el("header", {}, host);
    el("h1", {}, h, "Compare: " + models.map((m) => m.d.model).join(", "));
    const charts = el("div", { class: "charts" }, section(host, "Complexity", "complexity"));
    bubbles(models, charts, /(?:^|[#&])x=ms(?:&|$)/.test(location.hash) ? "ms" : "gmacs");
    compareTable(models, section(host, "Totals", "totals"));
    const side = el("div", { class: "side-by-side" }, section(host, "Layers, side by side", "tables"));
    models.forEach((m) => { const col = el("div", { class: "column" }, side); el("h3", {}, col, `${m.d.model} · ${m.d.input}`); new Table(m, col, true); });
    const s = section(host, "Architecture", "diagram");
    const pick = el("select", { class: "model-pick" }, el("div", { class: "toolbar" }, s));
    models.forEach((m, i) => el("option", { value: i }, pick, m.d.model));
    const holder = el("div", {}, s);
    const show = () => { holder.replaceChildren(); diagrams.length = 0; const dia = new Diagram(models[+pick.value], holder); diagrams.push(dia); dia.openKeys(hashKeys()); dia.draw(); };
    pick.onchange = show;
    show();
  }

  const main = document.getElementById("report");
  if (DATA.compare) compare(DATA.models, main);
  else single(DATA.models[0], main);
  const only = /(?:^|[#&])view=([^&]*)/.exec(location.hash);  // #view=charts: that section alone (screenshots)
  if (only) {
    const keep = decodeURIComponent(only[1]).split(",");
    main.querySelectorAll("section, nav").forEach((s) => { if (!keep.includes(s.id)) s.style.display = "none"; });
  }
  updateStatus();
})();
