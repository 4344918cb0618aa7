// The pages' one way to the memory: the same tools an assistant calls, and the owner's few
// requests that are not tools, through the server that serves the pages. The session cookie
// goes with each request (the browser adds it); the header proves it comes from these pages.

const HEADERS = { "content-type": "application/json", "x-memorygraph-ui": "1" };

/** Calls a tool; resolves to its structured answer, rejects with the tool's message. */
export async function call(name, args = {}) {
  const answer = await ask("/ui/api/call", { name, arguments: args });
  if (answer.isError) {
    const text = (answer.content || []).map((c) => c.text).join(" ");
    throw new Error(text || "the tool refused");
  }
  return answer.structuredContent ?? {};
}

/** One request to the pages' own endpoints (a JSON body makes it a POST); resolves to the
 * answer, rejects with the server's sentence. */
async function ask(path, body) {
  return (await send(path, body === undefined ? undefined : JSON.stringify(body))).json();
}

/** Sends a request (a body makes it a POST); resolves to the response once it is known to
 * be good, rejects with the server's sentence. */
async function send(path, body) {
  const init = { headers: HEADERS, credentials: "same-origin" };
  if (body !== undefined) Object.assign(init, { method: "POST", body });
  const response = await fetch(path, init);
  if (!response.ok) {
    const answer = await response.json().catch(() => ({}));
    throw new Error(answer.error || `HTTP ${response.status}`);
  }
  return response;
}

/** The whole graph at a glance: the most recently changed memories (at most `limit`) and
 * the relationships between them. */
export function overview(limit) {
  return ask("/ui/api/overview", { limit });
}

/** A whole export in `format` (json, markdown, dot, mermaid): resolves to the file (a Blob)
 * with its name and what it holds. */
export async function exportFile(format) {
  const response = await send("/ui/api/export", JSON.stringify({ format }));
  const name = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "")?.[1] || "memories.txt";
  return {
    blob: await response.blob(),
    name,
    memories: Number(response.headers.get("x-memorygraph-memories")),
    relationships: Number(response.headers.get("x-memorygraph-relationships")),
  };
}

/** Imports a file's text; `choices` holds format, skip_duplicates, dry_run, allow_secrets.
 * Resolves to the import's report. */
export async function importFile(text, choices) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(choices)) if (value) query.set(key, value === true ? "1" : value);
  return (await send(`/ui/api/import?${query}`, text)).json();
}

/** Replica mode's conflicts: `list`, or `retry` (keep this machine's version) or
 * `discard` (keep the primary's) one entry. */
export function conflicts(action, seq) {
  return ask("/ui/api/conflicts", { action, seq });
}

/** Removes a relationship: it stops being current and stays as history. */
export function endRelationship(id) {
  return ask("/ui/api/end-relationship", { relationship_id: id });
}

/** The database's change count: it moves whenever any client writes. */
export async function changes() {
  return (await ask("/ui/api/changes")).changes;
}

let vocabulary;
/** Memory types and relationship types with their categories. */
export async function types() {
  vocabulary ??= await ask("/ui/api/vocabulary");
  return vocabulary;
}
