// The pages' one way to the memory: the same tools an assistant calls, through the server
// that serves the pages. The session cookie goes with each request (the browser adds it);
// the header proves the request comes from these pages.

const HEADERS = { "content-type": "application/json", "x-memorygraph-ui": "1" };

/** Calls a tool; resolves to its structured answer, rejects with the tool's message. */
export async function call(name, args = {}) {
  const answer = await post("/ui/api/call", { name, arguments: args });
  if (answer.isError) {
    const text = (answer.content || []).map((c) => c.text).join(" ");
    throw new Error(text || "the tool refused");
  }
  return answer.structuredContent ?? {};
}

/** Posts a JSON body to one of the pages' own endpoints; resolves to the answer. */
async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: HEADERS,
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  const answer = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

/** Replica mode's conflicts: `list`, or `retry` (keep this machine's version) or
 * `discard` (keep the primary's) one entry. */
export function conflicts(action, seq) {
  return post("/ui/api/conflicts", { action, seq });
}

/** Removes a relationship: it stops being current and stays as history. */
export function endRelationship(id) {
  return post("/ui/api/end-relationship", { relationship_id: id });
}

async function get(path) {
  const response = await fetch(path, { headers: HEADERS, credentials: "same-origin" });
  const answer = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

/** The database's change count: it moves whenever any client writes. */
export async function changes() {
  return (await get("/ui/api/changes")).changes;
}

let vocabulary;
/** Memory types and relationship types with their categories. */
export async function types() {
  vocabulary ??= await get("/ui/api/vocabulary");
  return vocabulary;
}
