// Find: one box for search and recall, filters (type, tags, project, importance, dates),
// real paging, and the words of the query marked in each hit.

import { call, types } from "./api.js";
import { el, highlight, show, typeLabel, when } from "./dom.js";

const PAGE = 20;
let state = { query: "", how: "search", mode: "", type: "", tags: "", project: "", importance: "", after: "", before: "", offset: 0 };
let form = null;
let drawn = "";

export async function render(main, ctx) {
  if (!ctx.live || !form || !main.contains(form)) {
    form = await buildForm(ctx);
    const results = el("section", { id: "results", "aria-label": "Results" });
    show(main, form, results);
  }
  await run(main.querySelector("#results"), ctx);
}

async function buildForm(ctx) {
  const { memory_types } = await types();
  const field = (label, input) => el("label", {}, el("span", {}, label), input);
  const input = (name, attrs = {}) =>
    el("input", { name, value: state[name], ...attrs });
  const select = (name, options) =>
    el("select", { name }, options.map(([value, text]) => el("option", { value, selected: state[name] === value }, text)));
  const f = el(
    "form",
    { class: "find", role: "search", onsubmit: (e) => { e.preventDefault(); read(f); state.offset = 0; run(document.getElementById("results"), ctx); } },
    el("div", { class: "query" },
      el("label", { class: "visually-hidden", for: "q" }, "Search the memory"),
      el("input", { id: "q", name: "query", type: "search", value: state.query, placeholder: "Search or ask…", autofocus: true }),
      select("how", [["search", "Search"], ["recall", "Recall"]]),
      el("button", { type: "submit" }, "Find")),
    el("details", { class: "filters" },
      el("summary", {}, "Filters"),
      el("div", { class: "grid" },
        field("Mode", select("mode", [["", "best available"], ["lexical", "words"], ["semantic", "meaning"], ["hybrid", "both"]])),
        field("Type", select("type", [["", "any"], ...memory_types.map((t) => [t, t])])),
        field("Tags (comma separated)", input("tags")),
        field("Project path", input("project")),
        field("Importance at least", input("importance", { type: "number", min: 0, max: 1, step: 0.1 })),
        field("Created after", input("after", { type: "date" })),
        field("Created before", input("before", { type: "date" })))));
  return f;
}

function read(f) {
  const data = new FormData(f);
  for (const key of Object.keys(state)) if (data.has(key)) state[key] = String(data.get(key)).trim();
}

function args() {
  const a = { limit: PAGE, offset: state.offset };
  if (state.query) a.query = state.query;
  if (state.type) a.memory_types = [state.type];
  if (state.project) a.project_path = state.project;
  if (state.how === "recall") return a;
  if (state.mode) a.mode = state.mode;
  if (state.tags) a.tags = state.tags.split(",").map((t) => t.trim()).filter(Boolean);
  if (state.importance) a.min_importance = Number(state.importance);
  if (state.after) a.created_after = state.after;
  if (state.before) a.created_before = state.before;
  return a;
}

async function run(results, ctx) {
  const started = performance.now();
  const answer = await call(state.how === "recall" ? "recall_memories" : "search_memories", args());
  const hits = answer.results || answer.memories || [];
  const took = Math.round(performance.now() - started);
  const signature = JSON.stringify([state, answer]);
  if (ctx.live && signature === drawn) return;
  drawn = signature;
  const total = answer.total ?? hits.length;
  // Past 10,000 matches a page near the start is counted only that far: a lower bound.
  const counted = answer.total_exact === false ? `at least ${total}` : `${total}`;
  const pager = el("nav", { class: "pager", "aria-label": "Pages of results" },
    el("button", { type: "button", disabled: state.offset === 0, onclick: () => { state.offset = Math.max(0, state.offset - PAGE); run(results, ctx); } }, "Previous"),
    el("span", {}, total === 0 ? "No memory matches." : `${state.offset + 1}–${state.offset + hits.length} of ${counted}`),
    el("button", { type: "button", disabled: !answer.has_more, onclick: () => { state.offset += PAGE; run(results, ctx); } }, "Next"));
  show(results,
    el("p", { class: "meta" }, `${counted} found in ${took} ms`, answer.note ? ` · ${answer.note}` : ""),
    el("ol", { class: "hits", start: state.offset + 1 }, hits.map((h) => hit(h))),
    pager);
  ctx.say("");
}

function hit(h) {
  return el("li", { class: "hit" },
    el("a", { href: `#/memory/${encodeURIComponent(h.id)}`, class: "title" }, highlight(h.title, state.query)),
    " ", typeLabel(h.type),
    h.tags?.length ? el("span", { class: "tags" }, h.tags.map((t) => el("span", { class: "tag" }, t))) : null,
    h.snippet ? el("p", { class: "snippet" }, highlight(h.snippet, state.query)) : null,
    el("p", { class: "meta" }, `created ${when(h.created_at)}`, h.superseded_by ? ` · superseded by ${h.superseded_by}` : ""));
}
