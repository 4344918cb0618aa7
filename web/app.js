// The page's frame: which view the address names (#/, #/memory/ID, #/graph/ID, #/timeline,
// #/health, #/files), the theme, the status line, and live updates: the database's change count is
// polled, and the view on screen is drawn again when another client changed something.

import { changes } from "./api.js";
import * as find from "./find.js";
import * as memory from "./memory.js";
import * as graph from "./graph.js";
import * as timeline from "./timeline.js";
import * as health from "./health.js";
import * as files from "./files.js";

const POLL_MS = 400;
const view = document.getElementById("view");
const status = document.getElementById("status");
let current = null;
let seen = null;

/** Says something in the status line (errors stay until the next message). */
export function say(text, isError = false) {
  status.textContent = text;
  status.className = isError ? "error" : "";
}

function route() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  const page = parts[0] || "find";
  for (const link of document.querySelectorAll("nav a")) {
    link.toggleAttribute("aria-current", link.dataset.page === (page === "memory" ? "find" : page));
  }
  const views = { find, memory, graph, timeline, health, files };
  const chosen = views[page] || find;
  current = { view: chosen, parts, params };
  draw(false);
}

let drawing = Promise.resolve();

/** Draws the current view; one drawing at a time, so a live refresh never interleaves
 * with a navigation's drawing. */
function draw(live) {
  drawing = drawing.then(() => drawOnce(live));
  return drawing;
}

async function drawOnce(live) {
  const { view: chosen, parts, params } = current;
  try {
    await chosen.render(view, { id: parts[1], params, live, say, go });
    if (!live) say("");
  } catch (e) {
    say(e.message, true);
  }
}

/** Moves to another view. */
export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function poll() {
  try {
    const now = await changes();
    if (seen !== null && now !== seen && current && !view.querySelector("[data-editing]")) {
      await draw(true);
    }
    seen = now;
    document.documentElement.dataset.changes = now;
  } catch (e) {
    say(`lost the server: ${e.message}`, true);
  }
  setTimeout(poll, POLL_MS);
}

function theme() {
  const saved = localStorage.getItem("theme");
  if (saved) document.documentElement.dataset.theme = saved;
  document.getElementById("theme").addEventListener("click", () => {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === "dark"
      : matchMedia("(prefers-color-scheme: dark)").matches;
    const next = dark ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("theme", next);
  });
}

theme();
addEventListener("hashchange", route);
route();
poll();
