// Choosing a relationship: its type among the 35, grouped by category, its direction, and
// the other memory found by a search.

import { call, types } from "./api.js";
import { el, show, typeLabel } from "./dom.js";

export function relationshipForm(m) {
  const typeSelect = el("select", { name: "type", required: true });
  types().then(({ relationship_types }) => {
    const groups = new Map();
    for (const t of relationship_types) {
      if (!groups.has(t.category)) groups.set(t.category, []);
      groups.get(t.category).push(t.type);
    }
    show(typeSelect, [...groups].map(([category, list]) =>
      el("optgroup", { label: category }, list.map((t) => el("option", { value: t }, t)))));
  });
  const chosen = el("input", { type: "hidden", name: "other" });
  const picked = el("p", { class: "meta", "aria-live": "polite" }, "No memory chosen yet.");
  const found = el("ul", { class: "picker" });
  const query = el("input", { type: "search", name: "find", placeholder: "Find the other memory…", "aria-label": "Find the other memory" });
  const search = async () => {
    const answer = await call("search_memories", { query: query.value, limit: 8 });
    show(found, (answer.results || []).filter((h) => h.id !== m.id).map((h) =>
      el("li", {}, el("button", { type: "button", class: "pick", onclick: () => {
        chosen.value = h.id;
        show(picked, "Chosen: ", h.title);
      } }, h.title, " ", typeLabel(h.type)))));
  };
  query.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); search(); } });
  return [
    el("label", {}, el("span", {}, "Type"), typeSelect),
    el("label", {}, el("span", {}, "Direction"),
      el("select", { name: "direction" },
        el("option", { value: "from" }, "this memory → the other"),
        el("option", { value: "to" }, "the other → this memory"))),
    el("div", { class: "query" }, query, el("button", { type: "button", onclick: search }, "Search")),
    found, picked, chosen,
  ];
}
