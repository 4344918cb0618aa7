// Recent activity as a timeline by day, newest first, with unsolved problems marked.

import { call } from "./api.js";
import { el, show, typeLabel } from "./dom.js";

let days = 30;

export async function render(main, ctx) {
  const answer = await call("get_recent_activity", { days });
  const unsolved = new Set((answer.unresolved_problems || []).map((p) => p.id));
  const byDay = new Map();
  for (const m of answer.recent_memories || []) {
    const day = new Date(m.created_at).toLocaleDateString(undefined, { weekday: "short", year: "numeric", month: "short", day: "numeric" });
    if (!byDay.has(day)) byDay.set(day, []);
    byDay.get(day).push(m);
  }
  const choose = el("select", { "aria-label": "How far back", onchange: (e) => { days = Number(e.target.value); render(main, ctx); } },
    [7, 30, 90, 365].map((d) => el("option", { value: d, selected: d === days }, `last ${d} days`)));
  show(main,
    el("h2", {}, "Timeline"),
    el("p", { class: "actions" }, choose, el("span", { class: "meta" },
      `${answer.total_count ?? 0} memories, ${answer.unresolved_total ?? 0} unsolved problems`)),
    byDay.size === 0 ? el("p", {}, "Nothing in this period.") : null,
    [...byDay].map(([day, list]) => el("section", { class: "day" },
      el("h3", {}, day),
      el("ul", { class: "links" }, list.map((m) => el("li", { class: unsolved.has(m.id) ? "unsolved" : "" },
        el("a", { href: `#/memory/${encodeURIComponent(m.id)}` }, m.title), " ", typeLabel(m.type),
        unsolved.has(m.id) ? el("strong", { class: "flag" }, " unsolved") : null))))));
}
