// Health and sync: mode, counts, sizes, the model and its backlog; in replica mode the last
// sync, writes waiting, conflicts with both versions side by side, and the sync figures.

import { call, conflicts } from "./api.js";
import { el, show, when } from "./dom.js";

export async function render(main, ctx) {
  const h = await call("health", {});
  const db = h.database || {};
  const sem = h.semantic || {};
  const rows = (pairs) => el("dl", { class: "fields" }, pairs.filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
  const parts = [
    el("h2", {}, "Health"),
    el("p", {}, `Mode: ${h.mode}. `, h.mode_reason || ""),
    el("section", {}, el("h3", {}, "Database"), rows([
      ["memories", db.memories], ["relationships", db.relationships], ["file", db.database_path],
      ["size", `${((db.database_bytes || 0) / 1048576).toFixed(1)} MB (log ${((db.wal_bytes || 0) / 1048576).toFixed(1)} MB)`],
      ["schema", `${db.schema_version} of ${db.supported_schema_version}`], ["changes", db.changes], ["durability", db.durability],
    ])),
    el("section", {}, el("h3", {}, "Semantic recall"), rows([
      ["state", sem.state], ["vectors", sem.vectors], ["waiting for a vector", sem.pending], ["default search", sem.default_search_mode],
      ["model loaded in", sem.load_ms !== undefined ? `${sem.load_ms} ms` : undefined], ["to enable", sem.how_to_enable],
    ])),
  ];
  if (h.sync) {
    const s = h.sync;
    const q = h.queue || {};
    parts.push(el("section", {}, el("h3", {}, "Sync"), rows([
      ["primary", s.primary_url], ["online", s.online], ["last success", when(s.last_success_at)], ["last error", s.last_error],
      ["syncs", s.syncs], ["failed syncs", s.sync_failures], ["rows pulled", s.pulled_rows], ["latency p50", s.sync_latency_p50_ms && `${s.sync_latency_p50_ms} ms`],
      ["writes waiting", q.queued_writes], ["set aside", q.set_aside], ["conflicts", q.conflicts],
    ])));
    const issues = (await conflicts("list")).issues || [];
    const settle = (action, seq) => async () => {
      try {
        const done = await conflicts(action, seq);
        ctx.say(`${done.entries} entry settled; the next sync applies it.`);
        await render(main, ctx);
      } catch (e) {
        ctx.say(e.message, true);
      }
    };
    if (issues.length) {
      parts.push(el("section", { id: "conflicts" }, el("h3", {}, "Conflicts and set-aside writes"),
        issues.map((c) => el("article", { class: "conflict", "data-seq": c.seq },
          el("h4", {}, `#${c.seq} ${c.issue.replace("_", " ")}: ${c.kind} ${c.row_id}`),
          el("p", {}, c.reason),
          el("div", { class: "versions" },
            el("figure", {}, el("figcaption", {}, "This machine"), el("pre", {}, pretty(c.local_version))),
            el("figure", {}, el("figcaption", {}, "The primary"), el("pre", {}, pretty(c.primary_version)))),
          el("div", { class: "actions" },
            el("button", { type: "button", id: `keep-mine-${c.seq}`, onclick: settle("retry", c.seq) }, "Keep this machine's version"),
            el("button", { type: "button", id: `keep-primary-${c.seq}`, onclick: settle("discard", c.seq) }, "Keep the primary's version"))))));
    }
  }
  show(main, ...parts);
}

function pretty(version) {
  if (!version) return "(none: deleted)";
  try {
    const row = JSON.parse(version);
    if (typeof row.properties === "string") row.properties = JSON.parse(row.properties);
    return JSON.stringify(row, null, 2);
  } catch {
    return version;
  }
}
