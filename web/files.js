// Files in and out: a whole export in any format the command line writes (saved by the
// browser), and an import of MemoryGraph's JSON export or the reference server's JSON
// Lines, with a dry run to see first what it would do.

import { exportFile, importFile } from "./api.js";
import { el, show } from "./dom.js";

const EXPORTS = [
  ["json", "MemoryGraph JSON (can be imported again)"],
  ["markdown", "Markdown (every memory one after the other)"],
  ["dot", "Graphviz DOT picture"],
  ["mermaid", "Mermaid flowchart"],
];

let saved = null;

export async function render(main, ctx) {
  if (ctx.live && main.querySelector("#import-file")) return;
  const format = el("select", { id: "export-format" }, EXPORTS.map(([v, label]) => el("option", { value: v }, label)));
  const exported = el("p", { id: "export-result", class: "meta" });
  const file = el("input", { id: "import-file", type: "file", accept: ".json,.jsonl,application/json" });
  const importFormat = el("select", { id: "import-format" },
    el("option", { value: "" }, "from its content"), el("option", { value: "json" }, "MemoryGraph JSON"),
    el("option", { value: "jsonl" }, "reference server JSON Lines"));
  const box = (id, label) => el("label", { class: "check" }, el("input", { type: "checkbox", id }), label);
  const report = el("div", { id: "import-report", "aria-live": "polite" });
  show(main,
    el("h2", {}, "Import and export"),
    el("section", {}, el("h3", {}, "Export"),
      el("label", {}, el("span", {}, "Format"), format),
      el("p", { class: "actions" }, el("button", { type: "button", id: "export", onclick: () => save(format.value, exported, ctx) }, "Export")),
      exported),
    el("section", {}, el("h3", {}, "Import"),
      el("label", {}, el("span", {}, "File"), file),
      el("label", {}, el("span", {}, "Format"), importFormat),
      box("skip-duplicates", "Keep memories already here and import the rest"),
      box("allow-secrets", "Import text that looks like a secret"),
      el("p", { class: "actions" },
        el("button", { type: "button", id: "import-check", onclick: () => load(true) }, "Check"),
        el("button", { type: "button", id: "import", onclick: () => load(false) }, "Import")),
      report));

  async function load(dryRun) {
    const chosen = file.files[0];
    if (!chosen) { ctx.say("Choose a file to import first.", true); return; }
    const choices = {
      format: importFormat.value,
      skip_duplicates: main.querySelector("#skip-duplicates").checked,
      allow_secrets: main.querySelector("#allow-secrets").checked,
      dry_run: dryRun,
    };
    try {
      const r = await importFile(await chosen.text(), choices);
      show(report, describe(r, chosen.name));
      ctx.say(dryRun ? "Checked: nothing was written." : "Imported.");
    } catch (e) {
      show(report, el("p", { class: "error" }, e.message));
      ctx.say("Nothing was imported.", true);
    }
  }
}

async function save(format, exported, ctx) {
  try {
    const file = await exportFile(format);
    if (saved) URL.revokeObjectURL(saved);
    saved = URL.createObjectURL(file.blob);
    const link = el("a", { href: saved, download: file.name, id: "export-file" }, `Save ${file.name}`);
    show(exported, `${file.memories} memories and ${file.relationships} relationships (${(file.blob.size / 1024).toFixed(1)} KB): `, link);
    link.click();
    ctx.say(`Exported ${file.name}.`);
  } catch (e) {
    ctx.say(e.message, true);
  }
}

function describe(r, name) {
  const lines = [
    `${r.dry_run ? "Would import" : "Imported"} ${r.memories_imported} memories and ${r.relationships_imported} relationships from ${name}.`,
  ];
  if (r.memories_skipped + r.relationships_skipped_existing > 0) {
    lines.push(`Already here, kept as they were: ${r.memories_skipped} memories, ${r.relationships_skipped_existing} relationships.`);
  }
  if (r.relationships_skipped_missing_endpoint > 0) {
    lines.push(`Left out ${r.relationships_skipped_missing_endpoint} relationship(s) whose end is not a memory.`);
  }
  if (r.dry_run) lines.push("Check only: nothing was written.");
  return lines.map((line) => el("p", {}, line));
}
