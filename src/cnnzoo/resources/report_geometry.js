/* cnnzoo report: measure the drawn diagram (tests and benchmarks/report_layout.py inject this after the page's
   script). For each view it presses the diagram's button, then counts in the browser's own geometry: sibling
   frames that overlap, boxes that overlap, frame titles outside their frame, edges that cross a box they do not
   connect, concatenations whose side-by-side inputs are out of the model's order, and the drift of the last box
   from the first. Writes JSON into <pre id="cnnzoo-geometry">. */
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("cnnzoo-data").textContent);
  const F = {};
  DATA.fields.forEach((f, i) => { F[f] = i; });
  const rows = DATA.models[0].rows;
  const views = decodeURIComponent((/(?:^|[#&])views=([^&]*)/.exec(location.hash) || [0, "Collapse all,Blocks,Open stages,Open all"])[1]);
  const rect = (e) => { const b = e.getBBox(); return { x0: b.x, y0: b.y, x1: b.x + b.width, y1: b.y + b.height }; };
  const meet = (a, b, eps) => a.x0 < b.x1 - eps && b.x0 < a.x1 - eps && a.y0 < b.y1 - eps && b.y0 < a.y1 - eps;
  function measure() {
    const svg = document.querySelector("svg.diagram");
    const boxes = new Map();  // item -> its boxes (a box per tower)
    svg.querySelectorAll("g.node").forEach((g) => boxes.set(g.getAttribute("data-item"), [...g.querySelectorAll("rect")].map(rect)));
    const all = [];
    boxes.forEach((bs, item) => bs.forEach((b) => all.push({ item, b })));
    const CELL = 120, grid = new Map();
    const cells = (b) => {
      const out = [];
      for (let i = Math.floor(b.x0 / CELL); i <= Math.floor(b.x1 / CELL); i++)
        for (let j = Math.floor(b.y0 / CELL); j <= Math.floor(b.y1 / CELL); j++) out.push(i + ":" + j);
      return out;
    };
    all.forEach((o, k) => cells(o.b).forEach((c) => { if (!grid.has(c)) grid.set(c, []); grid.get(c).push(k); }));
    let boxOverlaps = 0;
    grid.forEach((ks) => { for (let i = 0; i < ks.length; i++) for (let j = i + 1; j < ks.length; j++) {
      const a = all[ks[i]], b = all[ks[j]];
      if (a.item !== b.item && meet(a.b, b.b, 0.5) && cells(a.b)[0] !== undefined) boxOverlaps++;
    } });
    // frames
    const frames = [...svg.querySelectorAll("g.frame")].map((g) => ({ item: g.getAttribute("data-item"), parent: g.getAttribute("data-parent"),
                                                                      key: g.getAttribute("data-key"), b: rect(g.querySelector("rect")) }));
    let frameOverlaps = 0;
    const byParent = new Map();
    frames.forEach((f) => { if (!byParent.has(f.parent)) byParent.set(f.parent, []); byParent.get(f.parent).push(f); });
    byParent.forEach((fs) => { for (let i = 0; i < fs.length; i++) for (let j = i + 1; j < fs.length; j++) if (meet(fs[i].b, fs[j].b, 0.5)) frameOverlaps++; });
    const frameOf = new Map(frames.map((f) => [f.item, f]));
    let titlesOut = 0;
    svg.querySelectorAll("text.frame-title").forEach((t) => {
      const b = rect(t), f = frameOf.get(t.getAttribute("data-item")).b;
      if (b.x0 < f.x0 - 0.5 || b.x1 > f.x1 + 0.5 || b.y0 < f.y0 - 0.5 || b.y1 > f.y1 + 0.5) titlesOut++;
    });
    // edges against boxes
    let crossings = 0;
    const edges = [...svg.querySelectorAll("path.edge")];
    for (const p of edges) {
      const ends = new Set([p.getAttribute("data-from"), p.getAttribute("data-to")]);
      const hit = new Set(), len = p.getTotalLength();
      for (let s = 0; s <= len; s += 3) {
        const q = p.getPointAtLength(s);
        for (const k of grid.get(Math.floor(q.x / CELL) + ":" + Math.floor(q.y / CELL)) || []) {
          const o = all[k];
          if (ends.has(o.item) || hit.has(o.item)) continue;
          if (q.x > o.b.x0 + 1 && q.x < o.b.x1 - 1 && q.y > o.b.y0 + 1 && q.y < o.b.y1 - 1) hit.add(o.item);
        }
      }
      crossings += hit.size;
    }
    // branch order: a concatenation's inputs that sit side by side come left to right in the model's order
    let joins = 0, misordered = 0;
    svg.querySelectorAll("g.node[data-row]").forEach((g) => {
      const r = +g.getAttribute("data-row");
      if (rows[r][F.kind] !== "concat") return;
      const inputs = rows[r][F.inputs];
      const into = edges.filter((p) => p.getAttribute("data-to") === g.getAttribute("data-item"))
        .map((p) => ({ pos: Math.min(...p.getAttribute("data-rows").split(",").map((i) => inputs.indexOf(+i))), b: boxes.get(p.getAttribute("data-from")) }))
        .filter((s) => s.b).sort((a, b) => a.pos - b.pos);
      const seen = new Set();
      const srcs = into.filter((s) => { const k = s.b[0].x0 + ":" + s.b[0].y0; if (seen.has(k)) return false; seen.add(k); return true; });
      if (srcs.length < 2) return;
      joins++;
      let bad = false;
      for (let i = 0; i < srcs.length; i++) for (let j = i + 1; j < srcs.length; j++) {
        const a = srcs[i].b, b = srcs[j].b;
        const A = { y0: Math.min(...a.map((x) => x.y0)), y1: Math.max(...a.map((x) => x.y1)), x1: Math.max(...a.map((x) => x.x1)) };
        const B = { y0: Math.min(...b.map((x) => x.y0)), y1: Math.max(...b.map((x) => x.y1)), x0: Math.min(...b.map((x) => x.x0)) };
        if (A.y0 < B.y1 && B.y0 < A.y1 && A.x1 > B.x0 + 0.5) bad = true;
      }
      if (bad) misordered++;
    });
    // drift: the last box's centre against the first's
    const order = [...svg.querySelectorAll("g.node")];
    const c = (g) => { const bs = boxes.get(g.getAttribute("data-item")); return { x: (bs[0].x0 + bs[bs.length - 1].x1) / 2, w: bs[bs.length - 1].x1 - bs[0].x0 }; };
    const first = c(order[0]), last = c(order[order.length - 1]);
    return { boxes: boxes.size, frames: frames.length, edges: edges.length, frame_overlaps: frameOverlaps, box_overlaps: boxOverlaps,
             titles_outside: titlesOut, crossings, joins, misordered, drift: Math.round(Math.abs(last.x - first.x)),
             box_width: Math.round(Math.max(first.w, last.w)), width: +svg.getAttribute("width"), height: +svg.getAttribute("height") };
  }
  const out = {};
  const buttons = [...document.querySelectorAll("#diagram .toolbar button")];
  for (const view of views.split(",")) {
    const b = buttons.find((x) => x.textContent === view);
    if (!b) { out[view] = null; continue; }
    const t0 = performance.now();
    b.click();
    const ms = performance.now() - t0;
    if (window.__cnnzooMutate) window.__cnnzooMutate(document.querySelector("svg.diagram"));  // the probe's own test
    out[view] = Object.assign(measure(), { draw_ms: Math.round(ms) });
  }
  const pre = document.createElement("pre");
  pre.id = "cnnzoo-geometry";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
