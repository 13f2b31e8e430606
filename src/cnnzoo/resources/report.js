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
  const SEQUENCES = new Set(["Sequential", "ModuleList", "ModuleDict"]);
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
  const tick = (text) => text.replace(/\.(\d*?)0+(?=\s|$)/, (_, d) => (d ? "." + d : ""));  // an axis reads "4 k", not "4.00 k"
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
      const n = this.nodes[+item.slice(1)];
      return n.name || n.label;
    }
    shortLabel(k) {  // a module inside another: its name relative to that one ("downsample" in "layer2.0")
      const label = this.nodes[k].label, p = this.parentOf["n" + k];
      const outer = p !== undefined && this.nodes[p].kind === "module" ? this.nodes[p].label + "." : null;
      return outer && label.startsWith(outer) ? label.slice(outer.length) : label;
    }
    towers(item) { return this.row(this.lastRow(item), "towers"); }
    title(k) {  // the paper's name where the model definition gives one, else the module's
      const n = this.nodes[k];
      if (n.name) return n.name;
      if (n.kind === "stage") return n.label + (this.stageSummary(k) ? ": " + this.stageSummary(k) : "");
      return this.shortLabel(k) + (n.type && !SEQUENCES.has(n.type) ? " · " + n.type : "");
    }
    holds(k) {
      // what a closed block holds: its kernels along its longest path ("1x1 → 3x3"), its branches, its shortcut
      const rows = this.rowsOf[k], inside = new Set(rows), len = new Map(), from = new Map();
      for (const i of rows) {
        let best = 0, via = null;
        for (const j of this.row(i, "inputs")) if (inside.has(j) && len.get(j) >= best) { best = len.get(j); via = j; }
        const kind = this.row(i, "kind");
        len.set(i, best + (kind === "conv" || kind === "pool" || kind === "linear" ? 1 : 0));
        from.set(i, via);
      }
      const last = rows[rows.length - 1], steps = [];
      for (let i = last; i !== null && i !== undefined; i = from.get(i)) {
        const kind = this.row(i, "kind"), kernel = this.row(i, "kernel");
        const size = kernel ? kernel.split(" ")[0] : "";
        if (kind === "conv") steps.push(size || "conv");
        else if (kind === "pool") steps.push((size ? size + " " : "") + "pool");
        else if (kind === "linear") steps.push("fc");
      }
      steps.reverse();
      const join = this.row(last, "kind"), ins = this.row(last, "inputs").filter((j) => inside.has(j));
      if (join === "concat" && ins.length > 1 && rows.length > ins.length + 1) return `${ins.length} branches → concat`;
      const chain = steps.length > 5 ? `${steps.length} layers` : steps.join(" → ") || `${rows.length} ops`;
      const skip = join === "elementwise" && this.row(last, "inputs").length > 1;
      return chain + (skip ? " + shortcut" : "");
    }
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

  // compound layered layout --------------------------------------------------------------------------
  // Every open container is laid out on its own as a layered (Sugiyama) drawing of its children, inside out:
  // - layers by longest path from the top, so that parallel branches start side by side (GoogLeNet's four);
  // - the order within a layer from a depth-first walk up from each join, in the order of its inputs (a
  //   concatenation's branches left to right as in the model; a residual add's shortcut right of its branch);
  // - long edges through dummy vertices that keep a lane of their own, or, where there are too many (a dense
  //   block, where every layer feeds every later one), in lanes to the right of the column, one per source;
  // - x by alternating passes that pull each vertex under (or over) its neighbours, under order constraints.
  // A container's inputs enter its frame at one port at the top and leave at one at the bottom, so an edge meets
  // a frame only at its ports and every frame's size is known to its parent; a frame is centred on its
  // neighbours, so that a chain of hundreds of blocks (ResNet-1001 opened) stays on one vertical line.
  const GAP_X = 26, GAP_Y = 30, DUMMY_W = 8, PAD = 12, TITLE_H = 26, LANE = 7, DENSE = 4;

  function layered(V, E) {
    // V: [{w, h, inX, outX, port: "in"|"out"|"", join: "concat"|"add"|""}] in data-flow order (IN first, OUT last);
    // E: [{u, v, order}] with u < v. Returns vertex centres x, layer tops y, the size, and a router.
    const n = V.length;
    const layer = new Array(n).fill(0);
    const into = V.map(() => []);
    E.forEach((e) => into[e.v].push(e));
    for (let k = 0; k < n; k++) for (const e of into[k]) layer[k] = Math.max(layer[k], layer[e.u] + 1);
    const out = V.findIndex((v) => v.port === "out");
    if (out >= 0) layer[out] = Math.max(0, ...layer.filter((_, k) => k !== out)) + 1;
    // dense: as many long edges as half the vertices (a dense block), not a shortcut or a short branch here and there
    const dense = E.filter((e) => layer[e.v] - layer[e.u] > 1).length >= Math.max(DENSE, n / 2);
    const W = V.map((v, k) => ({ w: v.w, h: v.h, layer: layer[k], dummy: false }));
    const up = W.map(() => []), down = W.map(() => []);  // per vertex: [neighbour, order, long]
    const paths = E.map((e) => {
      const long = layer[e.v] - layer[e.u] > 1;
      if (dense && long) return { e, path: [e.u, e.v], lane: true };
      const path = [e.u];
      for (let l = layer[e.u] + 1; l < layer[e.v]; l++) {
        W.push({ w: DUMMY_W, h: 0, layer: l, dummy: true });
        up.push([]); down.push([]);
        path.push(W.length - 1);
      }
      path.push(e.v);
      for (let i = 0; i + 1 < path.length; i++) {
        up[path[i + 1]].push([path[i], e.order, long]);
        down[path[i]].push([path[i + 1], e.order, long]);
      }
      return { e, path, lane: false };
    });
    // order: post-order of a walk up from the joins, inputs in their order (an add's long input, its shortcut, last)
    const num = new Array(W.length).fill(-1);
    let count = 0;
    const visit = (s) => {
      if (num[s] !== -1) return;
      num[s] = -2;
      const add = s < n && V[s].join === "add";
      const ins = up[s].slice().sort((a, b) => (add ? (a[2] ? 1 : 0) - (b[2] ? 1 : 0) : 0) || a[1] - b[1] || a[0] - b[0]);
      up[s] = ins;
      for (const [p] of ins) visit(p);
      num[s] = count++;
    };
    if (out >= 0) visit(out);
    for (let k = 0; k < W.length; k++) visit(k);
    const depth = Math.max(0, ...layer) + 1;
    const layers = Array.from({ length: depth }, () => []);
    W.forEach((v, i) => layers[v.layer].push(i));
    layers.forEach((L) => L.sort((a, b) => num[a] - num[b]));
    // x: centred packing, then passes down and up
    const x = new Array(W.length).fill(0);
    const sep = (a, b) => (W[a].w + W[b].w) / 2 + (W[a].dummy || W[b].dummy ? 10 : GAP_X);
    layers.forEach((L) => {
      let c = 0;
      L.forEach((v, i) => { if (i) c += sep(L[i - 1], v); x[v] = c; });
      L.forEach((v) => { x[v] -= c / 2; });
    });
    const want = (v, adj, downward) => {
      const nb = adj[v];
      if (!nb.length) return x[v];
      if (W[v].dummy) return x[nb[0][0]];
      if (downward && v < n && V[v].join === "add") return x[nb[0][0]];  // under its own branch, not the shortcut
      const real = nb.filter(([u]) => !W[u].dummy);
      const use = (real.length ? real : nb).map(([u]) => x[u]);
      return (Math.min(...use) + Math.max(...use)) / 2;
    };
    const place = (L, adj, downward) => {
      const w = L.map((v) => want(v, adj, downward));
      const left = w.slice(), right = w.slice();
      for (let i = 1; i < L.length; i++) left[i] = Math.max(left[i], left[i - 1] + sep(L[i - 1], L[i]));
      for (let i = L.length - 2; i >= 0; i--) right[i] = Math.min(right[i], right[i + 1] - sep(L[i], L[i + 1]));
      L.forEach((v, i) => { x[v] = (left[i] + right[i]) / 2; });
    };
    for (let it = 0; it < 7; it++) {
      if (it % 2 === 0) for (let l = 1; l < depth; l++) place(layers[l], up, true);
      else for (let l = depth - 2; l >= 0; l--) place(layers[l], down, false);
    }
    // y: layer tops; the ports' layers are flat
    const layerH = layers.map((L) => Math.max(0, ...L.map((v) => W[v].h)));
    const top = [];
    let cy = TITLE_H;
    const portOnly = (l) => layers[l].every((v) => v === out);
    for (let l = 0; l < depth; l++) { top.push(cy); cy += layerH[l] + (l + 1 < depth ? (portOnly(l + 1) ? PAD : GAP_Y) : 0); }
    const height = cy + (out >= 0 ? 0 : PAD);
    let minX = Math.min(...W.map((v, i) => x[i] - v.w / 2)), maxX = Math.max(...W.map((v, i) => x[i] + v.w / 2));
    // lanes right of everything, one per source of long edges, reused where their spans do not meet
    const laneOf = new Map(), lanes = [];
    const sources = [...new Set(paths.filter((p) => p.lane).map((p) => p.e.u))].sort((a, b) => layer[a] - layer[b] || a - b);
    for (const s of sources) {
      const end = Math.max(...paths.filter((p) => p.lane && p.e.u === s).map((p) => layer[p.e.v]));
      let k = lanes.findIndex((last) => last < layer[s]);
      if (k < 0) { lanes.push(end); k = lanes.length - 1; } else lanes[k] = end;
      laneOf.set(s, k);
    }
    const laneBase = maxX + 14, laneX = (k) => laneBase + k * LANE;
    if (lanes.length) maxX = laneX(lanes.length - 1) + 6;
    const shift = PAD - minX;
    for (let i = 0; i < x.length; i++) x[i] += shift;
    const width = maxX - minX + 2 * PAD;
    const bottom = (v) => top[W[v].layer] + layerH[W[v].layer];
    // a route from vertex u (leaving at xs) to vertex v (arriving at xe), in the container's coordinates
    const byEdge = new Map(paths.map((p) => [p.e.u + ">" + p.e.v, p]));
    function route(u, v, xs, xe) {
      const p = byEdge.get(u + ">" + v);
      let d = `L${xs},${top[layer[u]] + W[u].h} L${xs},${bottom(u)}`;
      if (p.lane) {
        const lx = laneX(laneOf.get(u)) + shift, k = laneOf.get(u) % 4;
        const ya = bottom(u) + 6 + 4 * k, yb = top[layer[v]] - 6 - 4 * k;
        return d + ` L${xs},${ya} L${lx},${ya} L${lx},${yb} L${xe},${yb} L${xe},${top[layer[v]]}`;
      }
      let px = xs;
      for (let i = 1; i < p.path.length; i++) {
        const w = p.path[i], last = i === p.path.length - 1;
        const nx = last ? xe : x[w];
        const y0 = bottom(p.path[i - 1]), y1 = top[W[w].layer], my = (y0 + y1) / 2;
        d += ` C${px},${my} ${nx},${my} ${nx},${y1}`;
        if (!last) d += ` L${nx},${bottom(w)}`;
        px = nx;
      }
      return d;
    }
    return { x: x.slice(0, n), y: V.map((_, k) => top[layer[k]]), width, height, route, layerBottom: (k) => bottom(k) };
  }

  // the diagram -------------------------------------------------------------------------------------
  class Diagram {
    constructor(model, host) {
      this.m = model;
      this.host = host;
      this.expanded = new Set();
      this.bar = el("div", { class: "toolbar" }, host);
      const button = (text, fn, tipText) => { const b = el("button", { type: "button", "data-tip": tipText }, this.bar, text); b.onclick = fn; return b; };
      button("Collapse all", () => { this.expanded.clear(); this.draw(); }, "one box per stage");
      button("Open stages", () => { this.expanded = new Set(model.d.stages); this.draw(); }, "the blocks of every stage");
      button("Blocks", () => { this.expanded = this.overview(); this.draw(); }, "stages and their blocks open: every shortcut, branch and concatenation");
      button("Open all", () => { this.expanded = new Set(model.nodes.map((_, k) => k)); this.draw(); }, "every layer (large models: a long picture)");
      button("Save SVG", () => this.save("svg"), "the diagram as it is drawn now, as an SVG file");
      button("Save PNG", () => this.save("png"), "the diagram as it is drawn now, as a PNG image");
      el("span", { class: "hint" }, this.bar, "Click a box (or Tab to it, Enter) to open it, a frame's title to close it. Hover for figures.");
      this.scroll = el("div", { class: "diagram-scroll" }, host);
    }
    overview() {
      // the default view: stages open, and their blocks where the picture stays readable
      // (those with a branch, a shortcut or a concatenation inside: a plain conv-BN-ReLU stays one box)
      const m = this.m, open = new Set(m.d.stages);
      const blocks = [];
      const branched = (k) => {
        const inside = new Set(m.rowsOf[k]);
        return m.rowsOf[k].some((i) => m.row(i, "inputs").filter((j) => inside.has(j)).length > 1 ||
                                        (m.row(i, "inputs").length > 1 && i !== m.rowsOf[k][0]));
      };
      m.d.stages.forEach((s) => m.nodes[s].children.forEach((c) => { if (c.n !== undefined && branched(c.n)) blocks.push(c.n); }));
      const shown = blocks.reduce((s, k) => s + m.nodes[k].children.length, 0);
      if (shown <= OVERVIEW_LIMIT) blocks.forEach((k) => open.add(k));
      return open;
    }
    tree() {
      // the visible tree: {id: "n5"|"r3"|"root", open, kids}; rep: row -> the visible item that holds it
      const m = this.m, rep = {}, parent = {};
      const build = (k, id) => {
        const node = { id, open: true, kids: [] };
        for (const c of m.nodes[k].children) node.kids.push(item(c.r !== undefined ? "r" + c.r : "n" + c.n, id));
        return node;
      };
      const item = (id, up) => {
        parent[id] = up;
        if (id[0] === "r") { rep[+id.slice(1)] = id; return { id, open: false, kids: [] }; }
        const k = +id.slice(1);
        if (this.expanded.has(k)) return build(k, id);
        m.rowsOf[k].forEach((i) => { rep[i] = id; });
        return { id, open: false, kids: [] };
      };
      const root = { id: "root", open: true, kids: m.d.stages.map((s) => item("n" + s, "root")) };
      return { root, rep, parent };
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
          if (!found.has(key)) found.set(key, { a, b, pairs: new Set(), rows: new Set(), order: k });
          const e = found.get(key), ta = m.row(i, "towers");
          e.rows.add(i);
          e.order = Math.min(e.order, k);
          const TA = m.towers(a), TB = m.towers(b);
          if (row[FIELDS.kind] === "reshape" && ta > 1 && ta === TA && ta === TB) {  // a per-tower block's chunk: tower to tower
            for (let t = 0; t < ta; t++) e.pairs.add(t + ":" + t);
            return;
          }
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
      const k = +item.slice(1), last = m.lastRow(item);
      if (m.nodes[k].kind === "stage") {
        return { title: m.title(k), sub: `${m.row(last, "output")} · ${si(m.sum(item, "macs"))}MACs · ${si(m.sum(item, "params"))} params`, kind: "stage" };
      }
      return { title: m.title(k), sub: `${m.row(last, "output")} · ${m.holds(k)}`, kind: "block" };
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
        const k = +item.slice(1), node = m.nodes[k];
        lines.push(`${m.title(k)}: ${node.label}${node.type ? "  (" + node.type + ")" : ""}, ${m.rowsOf[k].length} operations`,
                   `output ${m.row(last, "output")}`, "click to open");
      }
      lines.push(`params ${int(m.sum(item, "params"))}`, `MACs ${int(m.sum(item, "macs"))}`,
                 `memory ${int(m.sum(item, "mem"))} values`);
      if (m.row(last, "rf")) lines.push(`receptive field ${m.row(last, "rf")}, jump ${m.row(last, "jump")}`);
      return lines.join("\n");
    }
    frameTitle(id) {
      const k = +id.slice(1);
      return "− " + this.m.title(k);
    }
    draw() {
      const m = this.m;
      const { root, rep, parent } = this.tree();
      const leafEdges = this.edges(rep);
      const chain = (id) => { const out = [id]; while (parent[out[out.length - 1]] !== undefined) out.push(parent[out[out.length - 1]]); return out; };
      // every container's local edges: between its children, from its IN port, to its OUT port
      const local = new Map();  // container id -> Map(key -> {u, v, order}) with u, v child ids or "IN" / "OUT"
      const add = (c, u, v, order) => {
        if (!local.has(c)) local.set(c, new Map());
        const L = local.get(c), key = u + ">" + v;
        if (!L.has(key)) L.set(key, { u, v, order });
        else L.get(key).order = Math.min(L.get(key).order, order);
      };
      for (const e of leafEdges) {
        const ca = chain(e.a), cb = chain(e.b);
        const inB = new Set(cb);
        const j = ca.findIndex((c, i) => i > 0 && inB.has(c));
        const lca = ca[j], childA = ca[j - 1], childB = cb[cb.indexOf(lca) - 1];
        e.segments = [];
        for (let i = 1; i < j; i++) { add(ca[i], ca[i - 1], "OUT", 0); e.segments.push([ca[i], ca[i - 1], "OUT"]); }
        add(lca, childA, childB, e.order);
        e.segments.push([lca, childA, childB]);
        for (let i = cb.indexOf(lca) - 1; i > 0; i--) { add(cb[i], "IN", cb[i - 1], e.order); e.segments.push([cb[i], "IN", cb[i - 1]]); }
      }
      // sizes and layouts, inside out
      const box = new Map();  // id -> {w, h, inX, outX, L (a container's layout), index (child id -> vertex)}
      const measure = (node) => {
        if (!node.open) {
          const s = this.size(node.id);
          box.set(node.id, { w: s.w, h: s.h, inX: s.w / 2, outX: s.w / 2 });
          return;
        }
        node.kids.forEach(measure);
        const E0 = local.has(node.id) ? [...local.get(node.id).values()] : [];
        const ids = [];
        if (E0.some((e) => e.u === "IN")) ids.push("IN");
        node.kids.forEach((c) => ids.push(c.id));
        if (E0.some((e) => e.v === "OUT")) ids.push("OUT");
        const index = new Map(ids.map((id, k) => [id, k]));
        const V = ids.map((id) => {
          if (id === "IN" || id === "OUT") return { w: 0, h: 0, port: id === "IN" ? "in" : "out", join: "" };
          const b = box.get(id);
          const kind = id[0] === "r" ? m.row(+id.slice(1), "kind") : "";
          return { w: b.w, h: b.h, port: "", join: kind === "concat" ? "concat" : kind === "elementwise" ? "add" : "" };
        });
        const E = E0.map((e) => ({ u: index.get(e.u), v: index.get(e.v), order: e.order })).filter((e) => e.u < e.v);
        const L = layered(V, E);
        let w = L.width, h = L.height, dx = 0;
        if (node.id !== "root") {
          const tw = textWidth(this.frameTitle(node.id), "600 12px system-ui, sans-serif") + 2 * PAD + 4;
          if (tw > w) { dx = (tw - w) / 2; w = tw; }
        } else h -= TITLE_H - 10;
        const port = (id, fallback) => (index.has(id) ? L.x[index.get(id)] + dx : fallback);
        box.set(node.id, { w, h, dx, dy: node.id === "root" ? -(TITLE_H - 10) : 0, L, index, inX: port("IN", w / 2), outX: port("OUT", w / 2) });
      };
      measure(root);
      // absolute positions, outside in
      const at = new Map();  // id -> {x0, y0}
      const locate = (node, x0, y0) => {
        at.set(node.id, { x0, y0 });
        if (!node.open) return;
        const b = box.get(node.id);
        node.kids.forEach((c) => {
          const v = b.index.get(c.id), cb = box.get(c.id);
          locate(c, x0 + b.dx + b.L.x[v] - cb.w / 2, y0 + b.dy + b.L.y[v]);
        });
      };
      const MARGIN = 8;
      locate(root, MARGIN, MARGIN);
      const rb = box.get("root");
      const width = rb.w + 2 * MARGIN, height = rb.h + 2 * MARGIN + rb.dy;
      const svgRoot = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "diagram", "data-model": m.d.model,
                                   role: "img", "aria-label": `architecture of ${m.d.model}` });
      svg("title", {}, svgRoot, `${m.d.model}: architecture`);
      const defs = svg("defs", {}, svgRoot);
      const marker = svg("marker", { id: "arrow-" + this.uid(), viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
      svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#666" }, marker);
      // frames, outer first
      const gFrames = svg("g", { class: "frames" }, svgRoot), titles = [];
      const frames = (node, up) => {
        if (!node.open) return;
        if (node.id !== "root") {
          const k = +node.id.slice(1), n = m.nodes[k], p = at.get(node.id), b = box.get(node.id);
          const g = svg("g", { class: "frame", "data-key": n.key, "data-kind": n.kind, "data-item": node.id, "data-parent": up }, gFrames);
          svg("rect", { x: p.x0, y: p.y0, width: b.w, height: b.h, rx: 8, class: n.kind === "stage" ? "frame-stage" : "frame-block" }, g);
          titles.push([node.id, p.x0 + 8, p.y0 + 16, g]);
        }
        node.kids.forEach((c) => frames(c, node.id === "root" ? "" : m.nodes[+node.id.slice(1)].key));
      };
      frames(root, "");
      // edges: one path per pair of visible items, through the ports of the frames between them
      const gEdges = svg("g", { class: "edges" }, svgRoot);
      const towerX = (id, t) => {
        const count = m.towers(id), p = at.get(id), b = box.get(id);
        if (count <= 1 || id === "root") return p.x0 + b.w / 2;
        const tw = (b.w - (count - 1) * 8) / count;
        return p.x0 + tw / 2 + t * (tw + 8);
      };
      const portX = (c, id, out, t) => {  // where an edge leaves (out) or enters item id inside container c
        const b = box.get(c), p = at.get(c);
        if (id === "IN") return p.x0 + b.inX;
        if (id === "OUT") return p.x0 + b.outX;
        const cb = box.get(id);
        if (cb.L) return at.get(id).x0 + (out ? cb.outX : cb.inX);
        return towerX(id, t);
      };
      const translate = (d, dx, dy) => d.replace(/(-?[\d.]+(?:e-?\d+)?),(-?[\d.]+(?:e-?\d+)?)/g, (_, a, b) => `${(+a + dx).toFixed(1)},${(+b + dy).toFixed(1)}`);
      for (const e of leafEdges) {
        const pairs = [...e.pairs].map((p) => p.split(":").map(Number));
        if (!pairs.length) pairs.push([0, 0]);
        for (const [s, t] of pairs) {
          let d = "";
          e.segments.forEach(([c, u, v], i) => {
            const b = box.get(c), p = at.get(c);
            const xs = portX(c, u, true, i === 0 ? s : 0), xe = portX(c, v, false, i === e.segments.length - 1 ? t : 0);
            const ox = p.x0 + b.dx, oy = p.y0 + b.dy;
            d += " " + translate(b.L.route(b.index.get(u), b.index.get(v), xs - ox, xe - ox), ox, oy);
          });
          const cross = m.towers(e.a) > 1 && m.towers(e.b) > 1 && s !== t;
          svg("path", { d: "M" + d.trim().slice(1), class: cross ? "edge edge-cross" : "edge", "marker-end": `url(#arrow-${this.uid()})`,
                        "data-from": e.a, "data-to": e.b, "data-rows": [...e.rows].join(",") }, gEdges);
        }
      }
      // nodes
      const gNodes = svg("g", { class: "nodes" }, svgRoot);
      const leaves = [];
      const collect = (node) => { if (node.open) node.kids.forEach(collect); else leaves.push(node.id); };
      collect(root);
      leaves.forEach((it) => {
        const p = at.get(it), b = box.get(it);
        const t = this.nodeText(it);
        const color = COLORS[t.kind] || COLORS.other;
        const attrs = { class: "node node-" + t.kind, "data-tip": this.tipText(it), "data-kind": t.kind, "data-item": it };
        if (it[0] === "r") attrs["data-row"] = it.slice(1);
        else Object.assign(attrs, { "data-key": m.nodes[+it.slice(1)].key, tabindex: 0, role: "button", "aria-label": "open " + t.title });
        const g = svg("g", attrs, gNodes);
        svg("title", {}, g, this.tipText(it));
        const x0 = p.x0, y0 = p.y0;
        const count = m.towers(it);
        const tw = (b.w - (count - 1) * 8) / count;
        const { volume, caption } = towerSub(t.sub, count);
        const h = caption ? b.h - CAPTION_H : b.h;
        for (let k = 0; k < count; k++) {
          const rx = x0 + k * (tw + 8);
          svg("rect", { x: rx, y: y0, width: tw, height: h, rx: t.kind === "stage" || t.kind === "block" ? 7 : 4,
                        fill: t.kind === "stage" || t.kind === "block" ? "#ffffff" : tint(color, 0.82), stroke: color,
                        class: t.kind === "stage" || t.kind === "block" ? "box box-open" : "box" }, g);
          const cx = rx + tw / 2;
          svg("text", { x: cx, y: y0 + (t.kind === "stage" ? 19 : 16), class: t.kind === "stage" ? "t1 t-stage" : "t1" }, g, t.title);
          svg("text", { x: cx, y: y0 + h - (t.kind === "stage" ? 11 : 9), class: "t2" }, g, volume);
        }
        if (caption) svg("text", { x: x0 + b.w / 2, y: y0 + b.h - 3, class: "t2 tower-caption" }, g, caption);
        if (it[0] === "n") {
          svg("text", { x: x0 + b.w - 9, y: y0 + 13, class: "plus" }, g, "+");
          const open = () => { this.focus = m.nodes[+it.slice(1)].key; this.open(+it.slice(1)); };
          g.addEventListener("click", open);
          g.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); open(); } });
        }
      });
      // the frames' titles last, over the edges that enter at their ports
      const gTitles = svg("g", { class: "frame-titles" }, svgRoot);
      for (const [id, x, y, frame] of titles) {
        const k = +id.slice(1);
        const title = svg("text", { x, y, class: "frame-title", "data-tip": "click to close", "data-item": id, tabindex: 0, role: "button",
                                    "aria-label": "close " + m.title(k) }, gTitles, this.frameTitle(id));
        svg("title", {}, title, `${m.nodes[k].label}${m.nodes[k].type ? " (" + m.nodes[k].type + ")" : ""}: click to close`);
        const close = () => { this.focus = m.nodes[k].key; this.close(k); };
        title.addEventListener("click", close);
        title.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); close(); } });
        frame.setAttribute("data-title", id);
      }
      this.svg = svgRoot;
      this.scroll.replaceChildren(svgRoot);
      this.host.setAttribute("data-visible", leaves.length);
      if (this.focus) {  // keyboard users keep their place: the item they opened or closed
        const next = svgRoot.querySelector(`[data-key="${CSS.escape(this.focus)}"]`) ||
                     svgRoot.querySelector(`.frame-title[data-item="n${m.nodes.findIndex((n) => n.key === this.focus)}"]`);
        if (next && next.focus) next.focus();
        this.focus = null;
      }
      updateStatus();
    }
    standalone() {
      // the drawing as a file of its own: the page's diagram styles inlined, no tooltips
      const copy = this.svg.cloneNode(true);
      copy.setAttribute("xmlns", SVGNS);
      copy.querySelectorAll("[data-tip]").forEach((e) => e.removeAttribute("data-tip"));
      const style = document.createElementNS(SVGNS, "style");
      style.textContent = [...document.styleSheets].flatMap((sheet) => [...sheet.cssRules])
        .filter((r) => r.selectorText && /\.diagram\b(?!-)/.test(r.selectorText)).map((r) => r.cssText).join("\n");
      copy.insertBefore(style, copy.firstChild);
      return '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(copy);
    }
    save(kind) {
      const text = this.standalone(), name = `${this.m.d.model}-architecture.${kind}`;
      const download = (blob) => { const a = el("a", { href: URL.createObjectURL(blob), download: name }); a.click(); setTimeout(() => URL.revokeObjectURL(a.href), 1000); };
      const blob = new Blob([text], { type: "image/svg+xml" });
      if (kind === "svg") { download(blob); return; }
      const img = new Image(), w = +this.svg.getAttribute("width"), h = +this.svg.getAttribute("height");
      const scale = Math.min(2, 16000 / Math.max(w, h));  // canvases stop at about 16k pixels a side
      img.onload = () => {
        const canvas = el("canvas", { width: Math.round(w * scale), height: Math.round(h * scale) });
        const ctx = canvas.getContext("2d");
        ctx.fillStyle = "#fff";
        ctx.fillRect(0, 0, canvas.width, canvas.height);
        ctx.scale(scale, scale);
        ctx.drawImage(img, 0, 0, w, h);
        canvas.toBlob(download, "image/png");
      };
      img.src = URL.createObjectURL(blob);
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
      if (!keys.length) { this.expanded = this.overview(); return; }
      for (const key of keys) {  // "none": one box per stage
        if (key === "stages") this.m.d.stages.forEach((s) => this.expanded.add(s));
        else if (key === "blocks") this.overview().forEach((k) => this.expanded.add(k));
        else if (key === "all") this.m.nodes.forEach((_, k) => this.expanded.add(k));
        else if (byKey.has(key)) {
          for (let k = byKey.get(key); k !== undefined; k = this.m.parentOf["n" + k]) this.expanded.add(k);
        }
      }
    }
  }
  const OVERVIEW_LIMIT = 300;

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
  const KINDS = Object.keys(COLORS);

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
      if (KINDS.some((k) => k.startsWith(q))) {  // "conv" asks for convolutions, not a BatchNorm under "conv1."
        return ["type", "kernel", "kind"].some((f) => String(r[FIELDS[f]]).toLowerCase().includes(q));
      }
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
    const bw = Math.min(36, 1150 / rows.length);  // 800+ layers: thin bars, the chart (and its y axis) in view
    const w = Math.max(640, rows.length * bw + 90);
    for (const [key, title, color, unit] of [["mem", "Activation memory per layer (values per sample): memory is early", COLORS.conv, "values"],
                                              ["params", "Parameters per layer: parameters are late", COLORS.act, "params"]]) {
      const f = frame(host, title, w, 190, { l: 64, r: 16, t: 10, b: 26 });
      f.box.classList.add("wide");
      const max = Math.max(1, ...rows.map((r) => r[FIELDS[key]]));
      const sy = linear(0, max, f.h - f.m.b, f.m.t);
      axis(f, sy, niceTicks(0, max, 4), false, unit, (v) => tick(si(v)));
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
    axis(f, sx, niceTicks(0, max, 4), true, "MACs", (v) => tick(si(v)));
    stages.forEach((s, i) => {
      const y = f.m.t + i * rowH;
      svg("text", { x: f.m.l - 8, y: y + 16, "text-anchor": "end", class: "bar-label" }, f.root, s.name.length > 34 ? s.name.slice(0, 33) + "…" : s.name);
      svg("rect", { x: f.m.l, y: y + 4, width: Math.max(1, sx(s.macs) - f.m.l), height: rowH - 8, fill: COLORS.conv,
                    "data-tip": `${s.name}\n${int(s.macs)} MACs (${(100 * s.macs / total).toFixed(1)}%)\n${int(s.params)} params\noutput ${s.out}` }, f.root);
      svg("text", { x: sx(s.macs) + 6, y: y + 16, class: "bar-value" }, f.root, `${si(s.macs)} · ${(100 * s.macs / total).toFixed(0)}%`);
    });
  }

  function receptiveField(model, host) {
    // depth = conv and pool layers along the longest path to a layer (a branched net's branches side by side,
    // not one after the other in the order they were traced)
    const depth = new Map();
    const spatial = (r) => r[FIELDS.kind] === "conv" || r[FIELDS.kind] === "pool";
    model.rows.forEach((r) => depth.set(r[FIELDS.index], Math.max(0, ...r[FIELDS.inputs].map((i) => depth.get(i) || 0)) + (spatial(r) ? 1 : 0)));
    const all = model.rows.filter((r) => r[FIELDS.rf_num] !== null && spatial(r));
    if (!all.length) return;
    const deepest = new Map();  // per depth, the largest field
    all.forEach((r) => { const d = depth.get(r[FIELDS.index]); if (!deepest.has(d) || deepest.get(d)[FIELDS.rf_num] < r[FIELDS.rf_num]) deepest.set(d, r); });
    const pts = [...deepest.keys()].sort((a, b) => a - b).map((d) => deepest.get(d));
    const size = Math.max(...model.d.input_size.slice(1));
    const w = 640, f = frame(host, "Receptive field against depth (conv and pool layers)", w, 260);
    const maxY = 1.12 * Math.max(size, ...pts.map((r) => r[FIELDS.rf_num]));
    const top = Math.max(2, ...depth.values());
    const sx = linear(1, top, f.m.l, w - f.m.r), sy = linear(0, maxY, f.h - f.m.b, f.m.t);
    axis(f, sy, niceTicks(0, maxY, 5), false, "receptive field (pixels)", (v) => int(v));
    axis(f, sx, niceTicks(1, top, 6).filter((t) => t >= 1 && Number.isInteger(t)), true, "depth: conv / pool layers along the longest path", (v) => int(v));
    svg("line", { x1: f.m.l, x2: w - f.m.r, y1: sy(size), y2: sy(size), class: "ref" }, f.root);
    svg("text", { x: w - f.m.r - 4, y: sy(size) - 5, "text-anchor": "end", class: "ref-label" }, f.root, `input ${size} px`);
    svg("polyline", { points: pts.map((r) => `${sx(depth.get(r[FIELDS.index]))},${sy(r[FIELDS.rf_num])}`).join(" "), class: "line" }, f.root);
    all.forEach((r) => svg("circle", { cx: sx(depth.get(r[FIELDS.index])), cy: sy(r[FIELDS.rf_num]), r: 3.2, fill: COLORS[r[FIELDS.kind]],
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
      axis(f, sy, niceTicks(0, maxY, 5), false, "bytes", (v) => tick(bytes(v)));
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
    main.querySelectorAll("section, nav, header").forEach((s) => { if (!keep.includes(s.id)) s.style.display = "none"; });
  }
  if (/(?:^|[#&])svg(?:&|$)/.test(location.hash) && diagrams.length) {  // #svg: the drawing as a file, for `report --svg`
    el("pre", { id: "cnnzoo-svg", hidden: "" }, document.body, diagrams[0].standalone());
  }
  updateStatus();
})();
