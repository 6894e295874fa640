// The steerrec page: build a history, type preferences, compare steered and unsteered lists.
"use strict";
const $ = (id) => document.getElementById(id);
const history = []; // [{item_id, title}], oldest first
const keyBox = $("api-key");
keyBox.value = localStorage.getItem("steerrec-api-key") || "";
keyBox.addEventListener("change", () => localStorage.setItem("steerrec-api-key", keyBox.value));

async function call(path, body) {
  const headers = { "Content-Type": "application/json" };
  if (keyBox.value) headers["X-API-Key"] = keyBox.value;
  const resp = await fetch(path, body ? { method: "POST", headers, body: JSON.stringify(body) } : { headers });
  const data = await resp.json();
  if (!resp.ok) {
    const detail = Array.isArray(data.detail)
      ? data.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("\n")
      : JSON.stringify(data.detail);
    throw new Error(`${resp.status}: ${detail}`);
  }
  return data;
}

function showError(err) { $("error").textContent = err ? String(err.message || err) : ""; }

function listItem(item, button, onClick) {
  const li = document.createElement("li");
  li.textContent = `${item.title || "(no title)"} `;
  const id = document.createElement("span");
  id.className = "muted";
  id.textContent = item.item_id;
  li.appendChild(id);
  if (item.id_text) {
    // IDGenRec runs: the textual ID the recommender generated for this item
    const tid = document.createElement("code");
    tid.className = "textual-id";
    tid.textContent = ` ${item.id_text}`;
    tid.title = "textual ID (IDGenRec)";
    li.appendChild(tid);
  }
  if (button) {
    const b = document.createElement("button");
    b.textContent = button;
    b.addEventListener("click", onClick);
    li.appendChild(b);
  }
  return li;
}

function renderHistory() {
  const ol = $("history");
  ol.replaceChildren(...history.map((item, i) => listItem(item, "remove", () => {
    history.splice(i, 1);
    renderHistory();
  })));
}

async function loadUsers() {
  try {
    const data = await call("v1/users?limit=100");
    for (const user of data.users) {
      const opt = document.createElement("option");
      opt.value = opt.textContent = user;
      $("user-select").appendChild(opt);
    }
  } catch (err) { showError(err); }
}

$("user-select").addEventListener("change", async (ev) => {
  showError(null);
  history.length = 0;
  if (ev.target.value) {
    try {
      const data = await call(`v1/users/${encodeURIComponent(ev.target.value)}`);
      history.push(...data.history.slice(-200));
    } catch (err) { showError(err); }
  }
  renderHistory();
});

let searchTimer = null;
$("search").addEventListener("input", (ev) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const q = ev.target.value.trim();
    if (!q) { $("search-results").replaceChildren(); return; }
    try {
      const data = await call(`v1/items?query=${encodeURIComponent(q)}&limit=10`);
      $("search-results").replaceChildren(...data.items.map((item) => listItem(item, "add", () => {
        history.push(item);
        renderHistory();
      })));
    } catch (err) { showError(err); }
  }, 150);
});

$("clear-history").addEventListener("click", () => { history.length = 0; renderHistory(); });

function statements(id, verb) {
  return $(id).value.split("\n").map((s) => s.trim()).filter(Boolean)
    .map((s) => (/^(avoid|prefer|like|love|want|no |not )/i.test(s) ? s : `${verb} ${s}`));
}

function renderList(id, data, other) {
  const otherIds = new Set(other ? other.items.map((i) => i.item_id) : []);
  $(id).replaceChildren(...data.items.map((item) => {
    const li = listItem(item);
    li.title = `score ${item.score.toFixed(3)}`;
    if (other && !otherIds.has(item.item_id)) li.className = "new";
    return li;
  }));
  $(`${id}-meta`).textContent = `${data.model}, ${data.latency_ms.toFixed(1)} ms`;
}

function renderReadings(readings) {
  // one line per preference: read as avoid (its items left out) or like (its items raised)
  $("readings").replaceChildren(...readings.map((r) => {
    const li = document.createElement("li");
    li.className = r.reading;
    const effect = r.reading === "avoid" ? "left out" : "raised";
    li.textContent = `"${r.text}": ${r.reading} (p_avoid ${r.p_avoid.toFixed(2)}), ${r.items} items ${effect}`;
    return li;
  }));
}

$("go").addEventListener("click", async () => {
  showError(null);
  const base = {
    history: history.map((i) => i.item_id),
    k: Number($("k").value) || 10,
    exclude_history: $("exclude").checked,
  };
  const preferences = [...statements("likes", "Prefer"), ...statements("avoids", "Avoid")];
  try {
    const [steered, unsteered] = await Promise.all([
      call("v1/recommend", { ...base, preferences }),
      call("v1/recommend", { ...base, preferences: [] }),
    ]);
    renderList("steered", steered, unsteered);
    renderReadings(steered.steering || []);
    renderList("unsteered", unsteered, null);
  } catch (err) { showError(err); }
});

loadUsers();
