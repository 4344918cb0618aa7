// Building the page from data. Every stored string goes in as text (textContent or an
// attribute value), never as markup, so a memory titled "<script>" shows as those characters.

/** An element with attributes (on* handlers as functions) and children (nodes or strings). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      node.className = value;
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** SVG elements, for the graph. */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  append(node, children);
  return node;
}

/** Replaces a node's children. */
export function show(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/** Text with each query word marked, as text nodes and <mark> elements. */
export function highlight(text, query) {
  const words = (query || "").toLowerCase().split(/[^\p{L}\p{N}_]+/u).filter((w) => w.length > 1);
  if (!text || words.length === 0) return [text || ""];
  const lower = text.toLowerCase();
  const parts = [];
  let at = 0;
  while (at < text.length) {
    let next = -1;
    let length = 0;
    for (const w of words) {
      const found = lower.indexOf(w, at);
      if (found !== -1 && (next === -1 || found < next)) {
        next = found;
        length = w.length;
      }
    }
    if (next === -1) break;
    if (next > at) parts.push(text.slice(at, next));
    parts.push(el("mark", {}, text.slice(next, next + length)));
    at = next + length;
  }
  if (at < text.length) parts.push(text.slice(at));
  return parts;
}

/** A date as the user's local day and time. */
export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** A memory's type as a small label with its colour class. */
export function typeLabel(type) {
  return el("span", { class: `type type-${type}` }, type);
}
