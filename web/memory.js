// One memory in full: every field, its context, its relationships in both directions; edit,
// delete (after a confirmation), supersede with a new version, and link it to another.

import { call, endRelationship } from "./api.js";
import { el, show, typeLabel, when } from "./dom.js";
import { relationshipForm } from "./relationships.js";

let drawn = "";

export async function render(main, ctx) {
  if (ctx.live && main.querySelector("[data-editing]")) return;
  const id = ctx.id;
  let answer;
  try {
    answer = await call("get_memory", { memory_id: id, include_relationships: false });
  } catch (e) {
    show(main, el("h2", {}, "Not found"), el("p", {}, e.message), el("p", {}, el("a", { href: "#/" }, "Back to Find")));
    return;
  }
  const m = answer.memory;
  const related = await call("get_related_memories", { memory_id: id, max_depth: 1, limit: 100 });
  const links = related.related || [];
  const outgoing = links.filter((r) => r.relationship.from_id === id);
  const incoming = links.filter((r) => r.relationship.to_id === id);
  // A change elsewhere that leaves this memory as it was leaves the page alone (focus,
  // scroll and the elements under the pointer stay).
  const { usage_count: _uses, last_accessed: _read, ...shown } = m;
  const signature = JSON.stringify([shown, links]);
  // Checked again after the reads: a form opened meanwhile is not thrown away.
  if (ctx.live && (signature === drawn || main.querySelector("[data-editing]"))) return;
  drawn = signature;
  const actions = el("div", { class: "actions" },
    el("button", { type: "button", id: "edit", onclick: () => editForm(main, m, ctx) }, "Edit"),
    el("button", { type: "button", id: "supersede", onclick: () => supersedeForm(main, m, ctx) }, "Supersede"),
    el("button", { type: "button", id: "link", onclick: () => linkForm(main, m, ctx) }, "Add relationship"),
    el("a", { class: "button", href: `#/graph/${encodeURIComponent(id)}` }, "Graph"),
    el("button", { type: "button", id: "delete", class: "danger", onclick: () => confirmDelete(main, m, ctx) }, "Delete"));
  show(main,
    el("article", { class: "memory", "aria-labelledby": "memory-title" },
      el("h2", { id: "memory-title" }, m.title), " ", typeLabel(m.type),
      actions,
      el("div", { id: "editor" }),
      m.summary ? el("p", { class: "summary" }, m.summary) : null,
      el("div", { class: "content" }, m.content),
      answer.content_length > (m.content || "").length ? el("p", { class: "meta" }, `content shown up to ${m.content.length} of ${answer.content_length} characters`) : null,
      fields(m),
      m.context ? el("section", {}, el("h3", {}, "Context"), fields(m.context)) : null,
      el("section", {}, el("h3", {}, `Relationships from this memory (${outgoing.length})`), linkList(outgoing, "to", ctx)),
      el("section", {}, el("h3", {}, `Relationships to this memory (${incoming.length})`), linkList(incoming, "from", ctx))));
}

function fields(object) {
  const skip = new Set(["title", "content", "summary", "context", "type"]);
  return el("dl", { class: "fields" },
    Object.entries(object).filter(([k]) => !skip.has(k)).map(([k, v]) => [
      el("dt", {}, k.replaceAll("_", " ")),
      el("dd", {}, Array.isArray(v) ? v.join(", ") : typeof v === "object" && v !== null ? JSON.stringify(v) : k.endsWith("_at") || k === "last_accessed" ? when(v) : String(v)),
    ]));
}

function linkList(links, side, ctx) {
  if (links.length === 0) return el("p", { class: "meta" }, "None.");
  const remove = (r) => async () => {
    try {
      await endRelationship(r.relationship.id);
      ctx.say(`Removed the ${r.relationship.type} relationship.`);
      ctx.go(location.hash);
    } catch (e) {
      ctx.say(e.message, true);
    }
  };
  return el("ul", { class: "links" }, links.map((r) =>
    el("li", {},
      el("span", { class: "rel" }, r.relationship.type), " ",
      side === "to" ? "→ " : "← ",
      el("a", { href: `#/memory/${encodeURIComponent(r.memory.id)}` }, r.memory.title), " ",
      typeLabel(r.memory.type), " ",
      el("button", { type: "button", class: "small", "data-relationship": r.relationship.id,
        "aria-label": `Remove the ${r.relationship.type} relationship with ${r.memory.title}`,
        onclick: remove(r) }, "Remove"))));
}

/** A form in the editor slot; live refresh leaves the page alone while it is open. */
function editor(main, title, build, submit, ctx) {
  const slot = main.querySelector("#editor");
  const form = el("form", { class: "editor", "data-editing": true, "aria-label": title });
  const error = el("p", { class: "error", role: "alert" });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await submit(new FormData(form));
    } catch (err) {
      error.textContent = err.message;
    }
  });
  show(form, el("h3", {}, title), build(), error,
    el("div", { class: "actions" },
      el("button", { type: "submit" }, "Save"),
      el("button", { type: "button", onclick: () => { show(slot); ctx.go(location.hash); } }, "Cancel")));
  show(slot, form);
  form.querySelector("input, textarea, select")?.focus();
}

const text = (label, name, value, attrs = {}) =>
  el("label", {}, el("span", {}, label), el("input", { name, value: value ?? "", ...attrs }));
const area = (label, name, value) =>
  el("label", {}, el("span", {}, label), el("textarea", { name, rows: 8 }, value ?? ""));

function editForm(main, m, ctx) {
  editor(main, "Edit", () => [
    text("Title", "title", m.title, { required: true, maxlength: 200 }),
    area("Content", "content", m.content),
    text("Summary", "summary", m.summary),
    text("Tags (comma separated)", "tags", (m.tags || []).join(", ")),
    text("Importance (0–1)", "importance", m.importance, { type: "number", min: 0, max: 1, step: 0.05 }),
  ], async (data) => {
    const args = { memory_id: m.id };
    for (const key of ["title", "content", "summary"]) {
      const value = String(data.get(key));
      if (value !== (m[key] ?? "")) args[key] = value;
    }
    const tags = String(data.get("tags")).split(",").map((t) => t.trim()).filter(Boolean);
    if (tags.join(",") !== (m.tags || []).join(",")) args.tags = tags;
    const importance = Number(data.get("importance"));
    if (importance !== m.importance) args.importance = importance;
    await call("update_memory", args);
    ctx.say("Saved.");
    ctx.go(`#/memory/${encodeURIComponent(m.id)}`);
  }, ctx);
}

function supersedeForm(main, m, ctx) {
  editor(main, "Supersede with a new version", () => [
    text("Title", "title", m.title, { required: true, maxlength: 200 }),
    area("Content", "content", m.content),
  ], async (data) => {
    const stored = await call("store_memory", {
      type: m.type, title: String(data.get("title")), content: String(data.get("content")),
      tags: m.tags, importance: m.importance, supersedes: m.id,
    });
    ctx.say("Stored the new version.");
    ctx.go(`#/memory/${encodeURIComponent(stored.memory_id)}`);
  }, ctx);
}

function linkForm(main, m, ctx) {
  editor(main, "Add a relationship", () => relationshipForm(m), async (data) => {
    const other = String(data.get("other"));
    if (!other) throw new Error("choose the other memory from the search results");
    const outward = data.get("direction") === "from";
    await call("create_relationship", {
      from_memory_id: outward ? m.id : other,
      to_memory_id: outward ? other : m.id,
      relationship_type: String(data.get("type")),
    });
    ctx.say("Linked.");
    ctx.go(`#/memory/${encodeURIComponent(m.id)}`);
  }, ctx);
}

function confirmDelete(main, m, ctx) {
  const dialog = el("dialog", { class: "confirm", "aria-labelledby": "confirm-title", "data-editing": true },
    el("h3", { id: "confirm-title" }, "Delete this memory?"),
    el("p", {}, m.title),
    el("p", { class: "meta" }, "Its relationships go with it. This cannot be undone here (export first to keep a copy)."),
    el("div", { class: "actions" },
      el("button", { type: "button", class: "danger", id: "confirm-delete", onclick: async () => {
        try {
          await call("delete_memory", { memory_id: m.id });
          dialog.close();
          dialog.remove();
          ctx.say("Deleted.");
          ctx.go("#/");
        } catch (e) {
          ctx.say(e.message, true);
        }
      } }, "Delete"),
      el("button", { type: "button", autofocus: true, onclick: () => { dialog.close(); dialog.remove(); } }, "Keep it")));
  main.append(dialog);
  dialog.showModal();
}
