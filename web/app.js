// tinytracker's page: renders from API v1. Every name, title or text from the API is put in the
// page as text (textContent, or an attribute set through the DOM), never as HTML.
"use strict";

const main = () => document.getElementById("main");
let session = null; // the signed-in user with csrf_token, or null

// An element: el("a", {href: "/"}, "text", child, ...). Strings become text nodes.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Calls the API; resolves to the JSON answer, or throws an Error with the API's own message.
async function api(method, path, body) {
  const headers = {};
  if (session && method !== "GET") headers["X-CSRF-Token"] = session.csrf_token;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const reply = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  const text = await reply.text();
  let value = {};
  try { value = text ? JSON.parse(text) : {}; } catch (_) { value = { error: text }; }
  if (!reply.ok) throw new Error(value.error || reply.status + " " + reply.statusText);
  return value;
}

function alertBox() {
  return el("p", { class: "alert", role: "alert", hidden: true });
}

function say(box, message) {
  box.textContent = message;
  box.hidden = !message;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

function date(unix) {
  return unix ? new Date(unix * 1000).toISOString().slice(0, 16).replace("T", " ") : "";
}

function show(...nodes) {
  main().replaceChildren(...nodes.filter((node) => node !== null && node !== undefined));
  main().focus({ preventScroll: true });
}

// Live counts: one EventSource for the torrents on the page; `update(data)` gets each counts event.
let stream = null;
function follow(hashes, update) {
  if (stream) stream.close();
  if (!hashes.length) return;
  const query = hashes.map((h) => "info_hash=" + encodeURIComponent(h)).join("&");
  stream = new EventSource("/api/v1/events?" + query);
  stream.addEventListener("counts", (event) => update(JSON.parse(event.data)));
}

// The list: search, tag filter, sort, pages, live counts.
async function listView() {
  const params = new URLSearchParams(location.search);
  const q = el("input", { type: "search", name: "q", value: params.get("q") || "", placeholder: "Search", "aria-label": "Search" });
  const tag = el("input", { type: "text", name: "tag", value: params.get("tag") || "", placeholder: "Tag", "aria-label": "Tag" });
  const sort = el("select", { name: "sort", "aria-label": "Sort by" },
    ["added", "seeders", "leechers", "completed", "size", "name"].map((s) =>
      el("option", { value: s, selected: (params.get("sort") || "added") === s }, s)));
  const form = el("form", { class: "search", action: "/web/", method: "get" }, q, tag, sort,
    el("button", { type: "submit" }, "Search"));
  const box = alertBox();
  show(form, box);
  const query = new URLSearchParams();
  for (const key of ["q", "tag", "sort", "page"]) if (params.get(key)) query.set(key, params.get(key));
  let page;
  try { page = await api("GET", "/api/v1/torrents?" + query); } catch (e) { say(box, e.message); return; }
  const rows = page.torrents.map((t) => el("tr", { "data-hash": t.info_hash },
    el("td", {}, el("a", { href: "/web/torrent?hash=" + t.info_hash }, t.title)),
    el("td", { "data-label": "Tags" }, t.tags.join(", ")),
    el("td", { class: "number", "data-label": "Size" }, bytes(t.size)),
    el("td", { class: "number seeders", "data-label": "Seeders" }, t.seeders),
    el("td", { class: "number leechers", "data-label": "Leechers" }, t.leechers),
    el("td", { class: "number completed", "data-label": "Completed" }, t.completed),
    el("td", { "data-label": "Added" }, date(t.added))));
  const table = el("table", { class: "torrents" },
    el("thead", {}, el("tr", {}, ["Title", "Tags", "Size", "Seeders", "Leechers", "Completed", "Added"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows));
  const current = Number(params.get("page") || 1);
  const last = Math.max(1, Math.ceil(page.total / page.per_page));
  const link = (n, text) => {
    const next = new URLSearchParams(params);
    next.set("page", n);
    return el("a", { href: "/web/?" + next }, text);
  };
  const pages = el("p", { class: "pages" }, current > 1 ? link(current - 1, "« Previous") : null,
    " page " + current + " of " + last + " (" + page.total + " torrents) ",
    current < last ? link(current + 1, "Next »") : null);
  main().append(page.torrents.length ? table : el("p", {}, "No torrents found."), pages);
  follow(page.torrents.map((t) => t.info_hash), (c) => {
    const row = main().querySelector('tr[data-hash="' + c.info_hash + '"]');
    if (!row) return;
    row.querySelector(".seeders").textContent = c.seeders;
    row.querySelector(".leechers").textContent = c.leechers;
    row.querySelector(".completed").textContent = c.completed;
  });
}

// Peers over time as an SVG line plot (seeders and leechers), from the history's points.
function plot(history) {
  const points = history.fine.points.length > 1 ? history.fine.points : history.coarse.points;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 600 160");
  svg.setAttribute("class", "plot");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Seeders and leechers over time");
  if (!points.length) return el("p", { class: "plot-empty" }, "No peers recorded yet.");
  const t0 = points[0][0], t1 = Math.max(points[points.length - 1][0], t0 + 1);
  const top = Math.max(1, ...points.map((p) => Math.max(p[1], p[2])));
  for (const [column, name] of [[1, "seeders"], [2, "leechers"]]) {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("class", name);
    line.setAttribute("points", points.map((p) =>
      (10 + 580 * (p[0] - t0) / (t1 - t0)).toFixed(1) + "," + (150 - 140 * p[column] / top).toFixed(1)).join(" "));
    svg.append(line);
  }
  return el("figure", {}, svg, el("figcaption", {},
    "Seeders (solid) and leechers (dashed), at most " + top + ", from " + date(t0) + " to " + date(t1) + " UTC"));
}

async function torrentView() {
  const hash = new URLSearchParams(location.search).get("hash") || "";
  const box = alertBox();
  let t;
  try { t = await api("GET", "/api/v1/torrents/" + encodeURIComponent(hash)); } catch (e) { show(box); say(box, e.message); return; }
  const counts = el("p", { class: "counts" },
    "Seeders ", el("span", { class: "seeders" }, t.seeders),
    " · leechers ", el("span", { class: "leechers" }, t.leechers),
    " · completed ", el("span", { class: "completed" }, t.completed));
  const copied = el("span", { role: "status" });
  const actions = el("p", { class: "actions" },
    t.download_url ? el("a", { href: t.download_url, class: "button", download: "" }, "Download .torrent") : null,
    el("button", { type: "button", onclick: async () => {
      try { await navigator.clipboard.writeText(t.magnet); copied.textContent = "Magnet link copied"; }
      catch (_) { copied.textContent = t.magnet; }
    } }, "Copy magnet"), " ", copied);
  const files = el("table", { class: "files" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "File"), el("th", { scope: "col" }, "Size"))),
    el("tbody", {}, (t.files || []).map((f) => el("tr", {}, el("td", {}, f.path), el("td", { class: "number" }, bytes(f.size))))));
  const history = await api("GET", "/api/v1/torrents/" + t.info_hash + "/history").catch(() => null);
  show(el("h1", {}, t.title),
    t.artist ? el("p", { class: "artist" }, t.artist) : null,
    el("p", { class: "tags" }, t.tags.map((tag) => el("a", { href: "/web/?tag=" + encodeURIComponent(tag), class: "tag" }, tag))),
    counts, actions,
    t.description ? el("p", { class: "description" }, t.description) : null,
    history ? plot(history) : null,
    el("h2", {}, "Files"), files,
    el("p", { class: "meta" }, "Size " + bytes(t.size) + ", added " + date(t.added) + (t.uploader ? " by " + t.uploader : "") + ", info hash " + t.info_hash),
    editForm(t), removeButton(t, box), box);
  follow([t.info_hash], (c) => {
    counts.querySelector(".seeders").textContent = c.seeders;
    counts.querySelector(".leechers").textContent = c.leechers;
    counts.querySelector(".completed").textContent = c.completed;
  });
}

// Removing a torrent: moderators and admins.
function removeButton(t, box) {
  if (!session || (session.role !== "moderator" && session.role !== "admin")) return null;
  return el("p", {}, el("button", { type: "button", onclick: async () => {
    if (!confirm("Remove " + t.title + "?")) return;
    try { await api("DELETE", "/api/v1/torrents/" + t.info_hash); location.assign("/web/"); }
    catch (e) { say(box, e.message); }
  } }, "Remove this torrent"));
}

// Title, artist, description, tags and category, for the uploader and moderators.
function editForm(t) {
  const role = session ? session.role : "";
  const mine = session && (t.uploader === session.name || role === "moderator" || role === "admin");
  if (!mine) return null;
  const field = (name, label, value, tag) => el("label", {}, label,
    tag === "textarea" ? el("textarea", { name }, value) : el("input", { name, value }));
  const box = alertBox();
  const form = el("form", { class: "edit", onsubmit: async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = {
      title: data.get("title"), artist: data.get("artist"), description: data.get("description"),
      tags: String(data.get("tags")).split(",").map((s) => s.trim()).filter(Boolean),
      category: data.get("category") || null,
    };
    try { await api("PATCH", "/api/v1/torrents/" + t.info_hash, body); location.reload(); }
    catch (e) { say(box, e.message); }
  } }, el("h2", {}, "Edit"),
    field("title", "Title", t.title), field("artist", "Artist", t.artist),
    field("tags", "Tags (comma-separated)", t.tags.join(", ")), field("category", "Category", t.category),
    field("description", "Description", t.description || "", "textarea"),
    el("button", { type: "submit" }, "Save"), box);
  return form;
}

function signInView() {
  const box = alertBox();
  const form = el("form", { class: "sign-in", onsubmit: async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      await api("POST", "/api/v1/session", { name: data.get("name"), password: data.get("password") });
      location.assign("/web/");
    } catch (e) { say(box, e.message); }
  } }, el("h1", {}, "Sign in"),
    el("label", {}, "Name", el("input", { name: "name", autocomplete: "username", required: true })),
    el("label", {}, "Password", el("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    el("button", { type: "submit" }, "Sign in"), box);
  show(form);
}

async function inviteView(secret) {
  const box = alertBox();
  let invite;
  try { invite = await api("GET", "/api/v1/invites/" + encodeURIComponent(secret)); } catch (e) { show(box); say(box, e.message); return; }
  const form = el("form", { class: "invite", onsubmit: async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    if (data.get("password") !== data.get("again")) { say(box, "The two passwords differ."); return; }
    try {
      await api("POST", "/api/v1/invites/" + encodeURIComponent(secret), { password: data.get("password") });
      location.assign("/web/");
    } catch (e) { say(box, e.message); }
  } }, el("h1", {}, "Welcome, ", invite.name),
    el("p", {}, "Choose a password (10 characters or more) to sign in with."),
    el("label", {}, "Password", el("input", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 10 })),
    el("label", {}, "Again", el("input", { name: "again", type: "password", autocomplete: "new-password", required: true })),
    el("button", { type: "submit" }, "Set password and sign in"), box);
  show(form);
}

async function accountView() {
  const box = alertBox();
  if (!session) { location.assign("/web/sign-in"); return; }
  const me = await api("GET", "/api/v1/me");
  const origin = location.origin;
  const ratio = me.downloaded ? (me.uploaded / me.downloaded).toFixed(2) : "∞";
  const token = el("output", { class: "token" });
  show(el("h1", {}, me.name),
    el("dl", {},
      el("dt", {}, "Announce URL"), el("dd", { class: "announce" }, me.announce_url),
      el("dt", {}, "Uploaded"), el("dd", {}, bytes(me.uploaded)),
      el("dt", {}, "Downloaded"), el("dd", {}, bytes(me.downloaded)),
      el("dt", {}, "Ratio"), el("dd", {}, ratio),
      el("dt", {}, "RSS"), el("dd", {}, origin + "/" + me.passkey + "/rss"),
      el("dt", {}, "Torznab"), el("dd", {}, origin + "/api/torznab (API key: your passkey)")),
    el("p", {},
      el("button", { type: "button", onclick: async () => {
        try { await api("POST", "/api/v1/me/passkey"); location.reload(); } catch (e) { say(box, e.message); }
      } }, "Rotate my passkey"), " ",
      el("button", { type: "button", onclick: async () => {
        try { token.textContent = (await api("POST", "/api/v1/me/token")).api_token + " (shown only now)"; }
        catch (e) { say(box, e.message); }
      } }, "New API token"), " ", token),
    box);
}

// The `name` in a .torrent's info dictionary (`name.utf-8` first), or null: just enough bencode to
// prefill the title. The tracker parses the file itself when it arrives.
function torrentName(bytes) {
  let at = 0;
  const text = (start, end) => new TextDecoder().decode(bytes.subarray(start, end));
  function value(depth) {
    if (depth > 64 || at >= bytes.length) throw new Error("not bencode");
    const c = bytes[at];
    if (c === 0x69) { const end = bytes.indexOf(0x65, at); at = end + 1; return null; } // i…e
    if (c === 0x6c || c === 0x64) { // l…e, d…e
      at++;
      const dict = c === 0x64 ? {} : null;
      while (bytes[at] !== 0x65) {
        if (at >= bytes.length) throw new Error("not bencode");
        const key = dict ? string() : null;
        const item = value(depth + 1);
        if (dict && (key === "name" || key === "name.utf-8" || key === "info")) dict[key] = item;
      }
      at++;
      return dict;
    }
    return string();
  }
  function string() {
    const colon = bytes.indexOf(0x3a, at);
    const length = Number(text(at, colon));
    if (colon < 0 || !Number.isInteger(length)) throw new Error("not bencode");
    at = colon + 1 + length;
    return text(colon + 1, at);
  }
  try {
    const top = value(0);
    const info = top && top.info;
    return (info && (info["name.utf-8"] || info.name)) || null;
  } catch (_) { return null; }
}

// Upload: the file (chosen, or dropped on the form) and its metadata, sent as the form it is.
function uploadView() {
  if (!session) { location.assign("/web/sign-in"); return; }
  const box = alertBox();
  const file = el("input", { type: "file", name: "torrent", accept: ".torrent,application/x-bittorrent", required: true });
  const title = el("input", { name: "title" });
  const prefill = async () => {
    const chosen = file.files[0];
    if (!chosen || title.value) return;
    const name = torrentName(new Uint8Array(await chosen.arrayBuffer()));
    title.value = name || chosen.name.replace(/\.torrent$/i, "");
  };
  file.addEventListener("change", prefill);
  const form = el("form", { class: "upload", onsubmit: async (event) => {
    event.preventDefault();
    say(box, "");
    try {
      const answer = await api("POST", "/api/v1/torrents", new FormData(form));
      location.assign("/web/torrent?hash=" + answer.info_hash);
    } catch (e) { say(box, e.message); }
  } }, el("h1", {}, "Upload a torrent"),
    el("label", { class: "drop" }, ".torrent file (or drop it here)", file),
    el("label", {}, "Title", title),
    el("label", {}, "Artist", el("input", { name: "artist" })),
    el("label", {}, "Tags (comma-separated)", el("input", { name: "tags" })),
    el("label", {}, "Category", el("select", { name: "category" },
      ["", "movies", "music", "software", "tv", "books", "games", "data", "other"].map((c) => el("option", { value: c }, c || "(none)")))),
    el("label", {}, "Description", el("textarea", { name: "description" })),
    el("button", { type: "submit" }, "Upload"), box);
  form.addEventListener("dragover", (event) => event.preventDefault());
  form.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.files.length) { file.files = event.dataTransfer.files; prefill(); }
  });
  show(form);
}

// Admin: invite people, roles, disable, rotate, delete.
async function adminView() {
  const box = alertBox();
  let users;
  try { users = (await api("GET", "/api/v1/users")).users; } catch (e) { show(box); say(box, e.message); return; }
  const act = (method, path, body) => async () => {
    try { await api(method, path, body); location.reload(); } catch (e) { say(box, e.message); }
  };
  const invited = el("output", { class: "invite-link" });
  const invite = el("form", { class: "invite-user", onsubmit: async (event) => {
    event.preventDefault();
    const name = new FormData(invite).get("name");
    try {
      await api("POST", "/api/v1/users", { name });
      const link = await api("POST", "/api/v1/users/" + encodeURIComponent(name) + "/invite");
      invited.textContent = link.invite_url;
    } catch (e) { say(box, e.message); }
  } }, el("label", {}, "New user", el("input", { name: "name", required: true })),
    el("button", { type: "submit" }, "Create and invite"), " ", invited);
  const rows = users.map((u) => {
    const path = "/api/v1/users/" + encodeURIComponent(u.name);
    const role = el("select", { "aria-label": "Role of " + u.name, onchange: (event) => act("POST", path + "/role", { role: event.target.value })() },
      ["member", "uploader", "moderator", "admin"].map((r) => el("option", { value: r, selected: u.role === r }, r)));
    return el("tr", { "data-user": u.name },
      el("td", {}, u.name), el("td", {}, role),
      el("td", { class: "number" }, bytes(u.uploaded)), el("td", { class: "number" }, bytes(u.downloaded)),
      el("td", {}, u.disabled ? "disabled" : "active"),
      el("td", {},
        el("button", { type: "button", onclick: act("POST", path + (u.disabled ? "/enable" : "/disable")) }, u.disabled ? "Enable" : "Disable"), " ",
        el("button", { type: "button", class: "rotate", onclick: act("POST", path + "/rotate") }, "Rotate passkey"), " ",
        el("button", { type: "button", onclick: async () => {
          try { invited.textContent = (await api("POST", path + "/invite")).invite_url; } catch (e) { say(box, e.message); }
        } }, "Invite again"), " ",
        el("button", { type: "button", onclick: () => { if (confirm("Delete " + u.name + "?")) act("DELETE", path)(); } }, "Delete")));
  });
  show(el("h1", {}, "Users"), invite,
    el("table", { class: "users" },
      el("thead", {}, el("tr", {}, ["Name", "Role", "Uploaded", "Downloaded", "Status", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)), box);
}

async function start() {
  try { session = await api("GET", "/api/v1/session"); } catch (_) { session = null; }
  for (const item of document.querySelectorAll("[data-needs]")) {
    const needs = item.getAttribute("data-needs");
    item.hidden = needs === "anonymous" ? !!session
      : !session || (needs === "admin" && session.role !== "admin");
  }
  document.getElementById("sign-out").addEventListener("click", async () => {
    try { await api("DELETE", "/api/v1/session"); } catch (_) { /* signed out anyway */ }
    location.assign("/web/");
  });
  const path = location.pathname;
  if (path === "/web/" || path === "/web") return listView();
  if (path === "/web/torrent") return torrentView();
  if (path === "/web/sign-in") return signInView();
  if (path === "/web/account") return accountView();
  if (path === "/web/upload") return uploadView();
  if (path === "/web/admin") return adminView();
  if (path.startsWith("/web/invite/")) return inviteView(path.slice("/web/invite/".length));
  show(el("h1", {}, "Not found"), el("p", {}, el("a", { href: "/web/" }, "Back to the torrents")));
}

document.addEventListener("DOMContentLoaded", start);
