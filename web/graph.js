// The graph around a memory, to depth 1–3, or (without a memory) an overview of the most
// recently changed memories, up to 2,000: nodes coloured by type, edges coloured by
// category. Zoom with the wheel or the buttons, pan by dragging the background, drag a
// node, click (or Enter) to open it, double-click (or +) to add its own neighbours.
// The layout is a small force simulation written here: springs along edges, repulsion
// between nodes that are near (found through a grid, so 2,000 nodes lay out in well under
// a second), a pull to the centre.

import { call, overview, types } from "./api.js";
import { el, show, svg } from "./dom.js";

const SIZE = 800;
/** Most memories the overview draws. */
const OVERVIEW_LIMIT = 2000;
let graph = null;

export async function render(main, ctx) {
  if (!ctx.id) return overviewPage(main, ctx);
  const depth = Math.min(3, Math.max(1, Number(ctx.params.get("depth") || 1)));
  const shown = main.querySelector("svg.graph");
  if (ctx.live && shown && graph?.center === ctx.id) {
    await load(graph, ctx.id, depth);
    draw(shown, graph, ctx);
    return;
  }
  graph = await fresh(ctx.id);
  await load(graph, ctx.id, depth);
  const picture = svg("svg", { class: "graph", viewBox: `0 0 ${SIZE} ${SIZE}`, role: "group", "aria-label": "Graph of related memories" });
  const depthLinks = [1, 2, 3].map((d) =>
    el("a", { href: `#/graph/${encodeURIComponent(ctx.id)}?depth=${d}`, "aria-current": d === depth ? "true" : null }, `depth ${d}`));
  show(main,
    el("h2", {}, "Graph around ", el("a", { href: `#/memory/${encodeURIComponent(ctx.id)}` }, graph.nodes.get(ctx.id)?.title || ctx.id)),
    el("p", { class: "actions" }, depthLinks, zoomButtons(picture)),
    el("p", { class: "meta", id: "graph-count" }, count(graph)),
    picture);
  layout(graph, 300);
  fit(graph);
  draw(picture, graph, ctx);
  pan(picture);
}

async function fresh(center) {
  const categories = new Map((await types()).relationship_types.map((t) => [t.type, t.category]));
  return { center, nodes: new Map(), edges: new Map(), categories, view: { x: 0, y: 0, scale: 1 } };
}

const zoomButtons = (picture) => [
  el("button", { type: "button", onclick: () => zoom(picture, 1.25) }, "Zoom in"),
  el("button", { type: "button", onclick: () => zoom(picture, 0.8) }, "Zoom out"),
];

/** The whole graph at a glance. A live refresh keeps where every node already is, places
 * the new ones beside a neighbour and settles briefly, so the picture does not jump. */
async function overviewPage(main, ctx) {
  const asked = performance.now();
  const data = await overview(OVERVIEW_LIMIT);
  const loaded = performance.now();
  if (!data.nodes.length) {
    show(main, el("h2", {}, "Graph"), el("p", {}, "No memories yet: the graph appears once something is stored."));
    return;
  }
  const shown = ctx.live ? main.querySelector("svg.graph.overview") : null;
  const started = performance.now();
  const g = shown && graph?.overview ? graph : await fresh(null);
  g.overview = true;
  const old = g.nodes;
  g.nodes = new Map();
  g.edges = new Map(data.edges.map((e) => [e.id, e]));
  data.nodes.forEach((m, i) => g.nodes.set(m.id, old.get(m.id) || spiral(m, i)));
  if (old.size) {
    for (const e of g.edges.values()) {
      const a = g.nodes.get(e.from_id), b = g.nodes.get(e.to_id);
      if (a && b && !old.has(a.id) && old.has(b.id)) Object.assign(a, { x: b.x + 20, y: b.y + 20 });
      if (a && b && !old.has(b.id) && old.has(a.id)) Object.assign(b, { x: a.x + 20, y: a.y + 20 });
    }
  }
  graph = g;
  const picture = old.size ? shown
    : svg("svg", { class: "graph overview", viewBox: `0 0 ${SIZE} ${SIZE}`, role: "group", "aria-label": "Overview of the memory graph" });
  const drawn = data.nodes.length < data.total_memories
    ? `the ${data.nodes.length} most recently changed of ${data.total_memories} memories`
    : `${data.nodes.length} memories`;
  const says = `An overview of ${drawn}. Open a memory (or press Graph on its page) to see its neighbourhood.`;
  if (picture !== shown) {
    show(main,
      el("h2", {}, "Graph"),
      el("p", { id: "overview-says" }, says),
      el("p", { class: "actions" }, zoomButtons(picture)),
      el("p", { class: "meta", id: "graph-count" }, count(g)),
      picture);
    pan(picture);
  }
  if (old.size) {
    // Only the new memories move: the ones already drawn stay where the eye left them.
    const held = [...g.nodes.values()].filter((n) => old.has(n.id) && !n.pinned);
    held.forEach((n) => { n.pinned = true; });
    layout(g, 30);
    held.forEach((n) => { n.pinned = false; });
  } else {
    layout(g, 120);
  }
  if (!old.size) fit(g);
  draw(picture, g, ctx);
  picture.dataset.loadMs = Math.round(loaded - asked);
  picture.dataset.layoutMs = Math.round(performance.now() - started);
  picture.dataset.nodes = g.nodes.size;
  main.querySelector("#graph-count").textContent = count(g);
  main.querySelector("#overview-says").textContent = says;
}

/** A starting place on a sunflower spiral: evenly spread, so the layout starts near rest. */
function spiral(m, i) {
  const r = 18 * Math.sqrt(i + 1), angle = i * 2.39996;
  return { id: m.id, title: m.title, type: m.type, x: SIZE / 2 + r * Math.cos(angle), y: SIZE / 2 + r * Math.sin(angle) };
}

async function load(g, id, depth) {
  if (!g.nodes.has(id)) {
    const m = (await call("get_memory", { memory_id: id, include_relationships: false })).memory;
    g.nodes.set(id, node(m));
  }
  const related = await call("get_related_memories", { memory_id: id, max_depth: depth, limit: 200 });
  for (const r of related.related || []) {
    if (!g.nodes.has(r.memory.id)) g.nodes.set(r.memory.id, node(r.memory, g.nodes.get(id)));
    g.edges.set(r.relationship.id, r.relationship);
  }
}

function node(m, near) {
  const angle = Math.random() * 2 * Math.PI;
  const x = near ? near.x + 60 * Math.cos(angle) : SIZE / 2;
  const y = near ? near.y + 60 * Math.sin(angle) : SIZE / 2;
  return { id: m.id, title: m.title, type: m.type, x, y };
}

/** How far repulsion reaches: beyond it the push is too weak to matter. */
const REACH = 150;
/** Four of a cell's eight neighbours (right, and the row below): with the cell itself they
 * meet every pair of neighbouring cells once. */
const FORWARD = [10000, -9999, 1, 10001];

/** Pushes two nodes apart, harder the nearer they are. */
function repel(a, b) {
  let dx = a.x - b.x, dy = a.y - b.y;
  let d2 = dx * dx + dy * dy;
  if (d2 < 0.01) { dx = Math.random() - 0.5; dy = Math.random() - 0.5; d2 = 0.5; }
  const push = 2000 / (d2 * Math.sqrt(d2));
  a.dx += dx * push; a.dy += dy * push;
  b.dx -= dx * push; b.dy -= dy * push;
}

/** Moves the nodes towards balance; a fixed number of steps, so it always ends. Nodes are
 * pushed apart only by nodes in their own or a neighbouring cell of a grid; each pair is
 * visited once (a cell with itself and with four of its eight neighbours). */
function layout(g, steps) {
  const nodes = [...g.nodes.values()];
  const links = [...g.edges.values()].filter((e) => g.nodes.has(e.from_id) && g.nodes.has(e.to_id));
  const cellOf = (n) => (Math.floor(n.x / REACH) + 5000) * 10000 + (Math.floor(n.y / REACH) + 5000);
  for (let step = 0; step < steps; step++) {
    const heat = 1 - step / steps;
    const cells = new Map();
    for (const n of nodes) {
      n.dx = (SIZE / 2 - n.x) * 0.01; n.dy = (SIZE / 2 - n.y) * 0.01;
      const key = cellOf(n);
      const cell = cells.get(key);
      if (cell) cell.push(n); else cells.set(key, [n]);
    }
    for (const [key, cell] of cells) {
      for (let i = 0; i < cell.length; i++) {
        for (let j = i + 1; j < cell.length; j++) repel(cell[i], cell[j]);
      }
      for (const near of FORWARD) {
        const other = cells.get(key + near);
        if (!other) continue;
        for (const a of cell) for (const b of other) repel(a, b);
      }
    }
    for (const e of links) {
      const a = g.nodes.get(e.from_id), b = g.nodes.get(e.to_id);
      const dx = b.x - a.x, dy = b.y - a.y;
      const d = Math.sqrt(dx * dx + dy * dy) || 1;
      const pull = (d - 120) * 0.05;
      a.dx += dx / d * pull; a.dy += dy / d * pull;
      b.dx -= dx / d * pull; b.dy -= dy / d * pull;
    }
    for (const n of nodes) {
      if (n.pinned) continue;
      n.x += Math.max(-20, Math.min(20, n.dx)) * heat;
      n.y += Math.max(-20, Math.min(20, n.dy)) * heat;
    }
  }
}

function draw(picture, g, ctx) {
  const scene = svg("g", { class: "scene", transform: transform(g.view) });
  for (const e of g.edges.values()) {
    const a = g.nodes.get(e.from_id), b = g.nodes.get(e.to_id);
    if (!a || !b) continue;
    // The overview names an edge's type on hover only: thousands of labels would hide it.
    const label = g.overview ? svg("title", {}, e.type)
      : svg("text", { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 4, "text-anchor": "middle" }, e.type);
    scene.append(svg("g", { class: `edge cat-${g.categories.get(e.type) || "other"}` },
      svg("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, "marker-end": "url(#arrow)" }), label));
  }
  for (const n of g.nodes.values()) {
    const label = n.title.length > 40 ? `${n.title.slice(0, 39)}…` : n.title;
    const group = svg("g", { class: `node type-${n.type}${n.id === g.center ? " center" : ""}`, tabindex: 0, role: "link", "aria-label": `${n.title} (${n.type})`, "data-id": n.id, transform: `translate(${n.x},${n.y})` },
      svg("circle", { r: n.id === g.center ? 14 : 10 }),
      svg("text", { x: 16, y: 4 }, label),
      svg("title", {}, n.title));
    let clicks = 0;
    group.addEventListener("click", () => {
      clicks += 1;
      setTimeout(() => { if (clicks === 1) ctx.go(`#/memory/${encodeURIComponent(n.id)}`); clicks = 0; }, 250);
    });
    group.addEventListener("dblclick", () => expand(picture, g, n.id, ctx));
    group.addEventListener("keydown", (e) => {
      if (e.key === "Enter") ctx.go(`#/memory/${encodeURIComponent(n.id)}`);
      if (e.key === "+") expand(picture, g, n.id, ctx);
    });
    drag(group, n, picture, g, ctx);
    scene.append(group);
  }
  const defs = svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 20, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" }, svg("path", { d: "M 0 0 L 10 5 L 0 10 z" })));
  picture.replaceChildren(defs, scene);
  labels(picture);
}

async function expand(picture, g, id, ctx) {
  await load(g, id, 1);
  layout(g, 150);
  fit(g);
  draw(picture, g, ctx);
  document.getElementById("graph-count").textContent = count(g);
}

/** Zooms and centres the view on the nodes, leaving room for their labels. */
function fit(g) {
  const xs = [...g.nodes.values()].map((n) => n.x);
  const ys = [...g.nodes.values()].map((n) => n.y);
  const label = g.overview ? 0 : 80; // the overview hides titles until zoomed in
  const width = Math.max(...xs) - Math.min(...xs) + 80 + 2 * label;
  const height = Math.max(...ys) - Math.min(...ys) + 80;
  const scale = Math.min(2.5, (SIZE * 0.9) / width, (SIZE * 0.9) / height);
  const cx = (Math.max(...xs) + Math.min(...xs)) / 2 + label;
  const cy = (Math.max(...ys) + Math.min(...ys)) / 2;
  g.view = { x: SIZE / 2 - scale * cx, y: SIZE / 2 - scale * cy, scale };
}

const count = (g) =>
  `${g.nodes.size} memories, ${g.edges.size} relationships. Click a memory to open it; double-click (or press +) to add its neighbours.`;

const transform = (v) => `translate(${v.x},${v.y}) scale(${v.scale})`;

function zoom(picture, by) {
  graph.view.scale = Math.min(8, Math.max(0.05, graph.view.scale * by));
  picture.querySelector(".scene")?.setAttribute("transform", transform(graph.view));
  labels(picture);
}

/** The overview shows the memories' titles once zoomed in far enough to read them. */
function labels(picture) {
  picture.classList.toggle("near", graph.view.scale >= 0.9);
}

/** Screen pixels to picture units. */
function unit(picture) {
  const box = picture.getBoundingClientRect();
  return SIZE / Math.max(1, box.width);
}

function pan(picture) {
  let from = null;
  picture.addEventListener("pointerdown", (e) => {
    if (e.target.closest(".node")) return;
    from = { x: e.clientX, y: e.clientY, vx: graph.view.x, vy: graph.view.y };
    picture.setPointerCapture(e.pointerId);
  });
  picture.addEventListener("pointermove", (e) => {
    if (!from) return;
    const k = unit(picture);
    graph.view.x = from.vx + (e.clientX - from.x) * k;
    graph.view.y = from.vy + (e.clientY - from.y) * k;
    picture.querySelector(".scene").setAttribute("transform", transform(graph.view));
  });
  picture.addEventListener("pointerup", () => { from = null; });
  picture.addEventListener("wheel", (e) => { e.preventDefault(); zoom(picture, e.deltaY < 0 ? 1.1 : 0.9); }, { passive: false });
}

function drag(group, n, picture, g, ctx) {
  let from = null;
  group.addEventListener("pointerdown", (e) => {
    from = { x: e.clientX, y: e.clientY, nx: n.x, ny: n.y, moved: false };
    group.setPointerCapture(e.pointerId);
    e.stopPropagation();
  });
  group.addEventListener("pointermove", (e) => {
    if (!from) return;
    const k = unit(picture) / g.view.scale;
    const dx = (e.clientX - from.x) * k, dy = (e.clientY - from.y) * k;
    if (Math.abs(dx) + Math.abs(dy) > 3) from.moved = true;
    if (!from.moved) return;
    n.x = from.nx + dx; n.y = from.ny + dy; n.pinned = true;
    group.setAttribute("transform", `translate(${n.x},${n.y})`);
  });
  group.addEventListener("pointerup", () => {
    if (from?.moved) draw(picture, g, ctx);
    from = null;
  });
}
