// The graph around a memory, to depth 1–3: nodes coloured by type, labelled edges coloured
// by category. Zoom with the wheel or the buttons, pan by dragging the background, drag a
// node, click (or Enter) to open it, double-click (or +) to add its own neighbours.
// The layout is a small force simulation written here: springs along edges, repulsion
// between nodes, a pull to the centre.

import { call, types } from "./api.js";
import { el, show, svg } from "./dom.js";

const SIZE = 800;
let graph = null;

export async function render(main, ctx) {
  if (!ctx.id) {
    const recent = await call("get_recent_activity", { days: 30 });
    show(main, el("h2", {}, "Graph"),
      el("p", {}, "Choose a memory to start from (or open one and press Graph):"),
      el("ul", { class: "links" }, (recent.recent_memories || []).map((m) =>
        el("li", {}, el("a", { href: `#/graph/${encodeURIComponent(m.id)}` }, m.title)))));
    return;
  }
  const depth = Math.min(3, Math.max(1, Number(ctx.params.get("depth") || 1)));
  const shown = main.querySelector("svg.graph");
  if (ctx.live && shown && graph?.center === ctx.id) {
    await load(graph, ctx.id, depth);
    draw(shown, graph, ctx);
    return;
  }
  const categories = new Map((await types()).relationship_types.map((t) => [t.type, t.category]));
  graph = { center: ctx.id, nodes: new Map(), edges: new Map(), categories, view: { x: 0, y: 0, scale: 1 } };
  await load(graph, ctx.id, depth);
  const picture = svg("svg", { class: "graph", viewBox: `0 0 ${SIZE} ${SIZE}`, role: "group", "aria-label": "Graph of related memories" });
  const depthLinks = [1, 2, 3].map((d) =>
    el("a", { href: `#/graph/${encodeURIComponent(ctx.id)}?depth=${d}`, "aria-current": d === depth ? "true" : null }, `depth ${d}`));
  show(main,
    el("h2", {}, "Graph around ", el("a", { href: `#/memory/${encodeURIComponent(ctx.id)}` }, graph.nodes.get(ctx.id)?.title || ctx.id)),
    el("p", { class: "actions" }, depthLinks,
      el("button", { type: "button", onclick: () => zoom(picture, 1.25) }, "Zoom in"),
      el("button", { type: "button", onclick: () => zoom(picture, 0.8) }, "Zoom out")),
    el("p", { class: "meta", id: "graph-count" }, count(graph)),
    picture);
  layout(graph, 300);
  fit(graph);
  draw(picture, graph, ctx);
  pan(picture);
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

/** Moves the nodes towards balance; a fixed number of steps, so it always ends. */
function layout(g, steps) {
  const nodes = [...g.nodes.values()];
  const links = [...g.edges.values()].filter((e) => g.nodes.has(e.from_id) && g.nodes.has(e.to_id));
  for (let step = 0; step < steps; step++) {
    const heat = 1 - step / steps;
    for (const n of nodes) { n.dx = (SIZE / 2 - n.x) * 0.01; n.dy = (SIZE / 2 - n.y) * 0.01; }
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) {
        const a = nodes[i], b = nodes[j];
        let dx = a.x - b.x, dy = a.y - b.y;
        let d2 = dx * dx + dy * dy;
        if (d2 < 0.01) { dx = Math.random() - 0.5; dy = Math.random() - 0.5; d2 = 0.5; }
        const push = 2000 / d2;
        a.dx += dx * push / Math.sqrt(d2); a.dy += dy * push / Math.sqrt(d2);
        b.dx -= dx * push / Math.sqrt(d2); b.dy -= dy * push / Math.sqrt(d2);
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
    scene.append(svg("g", { class: `edge cat-${g.categories.get(e.type) || "other"}` },
      svg("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, "marker-end": "url(#arrow)" }),
      svg("text", { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 4, "text-anchor": "middle" }, e.type)));
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
  const width = Math.max(...xs) - Math.min(...xs) + 240;
  const height = Math.max(...ys) - Math.min(...ys) + 80;
  const scale = Math.min(2.5, (SIZE * 0.9) / width, (SIZE * 0.9) / height);
  const cx = (Math.max(...xs) + Math.min(...xs)) / 2 + 80;
  const cy = (Math.max(...ys) + Math.min(...ys)) / 2;
  g.view = { x: SIZE / 2 - scale * cx, y: SIZE / 2 - scale * cy, scale };
}

const count = (g) =>
  `${g.nodes.size} memories, ${g.edges.size} relationships. Click a memory to open it; double-click (or press +) to add its neighbours.`;

const transform = (v) => `translate(${v.x},${v.y}) scale(${v.scale})`;

function zoom(picture, by) {
  graph.view.scale = Math.min(8, Math.max(0.2, graph.view.scale * by));
  picture.querySelector(".scene")?.setAttribute("transform", transform(graph.view));
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
