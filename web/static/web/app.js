// Framewise page: sign-in, projects, uploads, live progress, the player and the dashboard, all via /api/v1.
// Every piece of user or server text reaches the page through textContent (or Option text), never as HTML.
"use strict";

(function (ns) {
  const API = "/api/v1";
  const TERMINAL = new Set(["completed", "failed"]);
  const $ = (id) => document.getElementById(id);

  // --- Tokens: sessionStorage (this tab only, gone when it closes), refreshed once on a 401 --------------
  const auth = {
    access: sessionStorage.getItem("fw.access"),
    refresh: sessionStorage.getItem("fw.refresh"),
    refreshing: null,
  };

  function saveTokens(tokens) {
    auth.access = tokens.access;
    auth.refresh = tokens.refresh;
    sessionStorage.setItem("fw.access", tokens.access);
    sessionStorage.setItem("fw.refresh", tokens.refresh);
  }

  function clearTokens() {
    auth.access = auth.refresh = null;
    sessionStorage.removeItem("fw.access");
    sessionStorage.removeItem("fw.refresh");
  }

  /** Seconds until the access token expires (its `exp` claim), or 0 when unknown. */
  function accessTtl() {
    try {
      const payload = JSON.parse(atob(auth.access.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      return payload.exp - Date.now() / 1000;
    } catch {
      return 0;
    }
  }

  /** One refresh at a time: rotation blacklists the old refresh token, so a second concurrent refresh
   * with it would be taken for token reuse and revoke the whole family. */
  function refreshAccess() {
    if (!auth.refresh) return Promise.resolve(false);
    auth.refreshing ||= fetch(`${API}/auth/token/refresh`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh: auth.refresh }),
    })
      .then(async (res) => {
        if (!res.ok) return false;
        saveTokens(await res.json());
        return true;
      })
      .catch(() => false)
      .finally(() => {
        auth.refreshing = null;
      });
    return auth.refreshing;
  }

  class ApiError extends Error {
    constructor(status, body) {
      super(errorText(status, body));
      this.status = status;
    }
  }

  /** The human part of the {error, message, details} shape, with field problems when there are some. */
  function errorText(status, body) {
    if (!body || typeof body !== "object") return status ? `The server answered ${status}.` : "Network error.";
    const parts = [body.message || `The server answered ${status}.`];
    const details = body.details || {};
    if (details.fields && typeof details.fields === "object") {
      for (const [field, problems] of Object.entries(details.fields)) parts.push(`${field}: ${[].concat(problems).join(" ")}`);
    }
    if (Array.isArray(details.errors)) {
      for (const e of details.errors) parts.push(`${(e.loc || []).slice(-1)[0] || ""} ${e.msg || ""}`.trim());
    }
    return parts.join(" ");
  }

  /** fetch() with the bearer token; a 401 triggers one refresh and one retry, then signs out. */
  async function api(path, { method = "GET", body, retry = true } = {}) {
    const url = path.startsWith("http") ? path : API + path;
    const send = () => {
      const headers = {};
      if (auth.access) headers.Authorization = `Bearer ${auth.access}`;
      if (body !== undefined) headers["Content-Type"] = "application/json";
      // API reads are cacheable for a few seconds (max-age=5); this page shows its own writes at once, so it
      // always revalidates: an unchanged answer costs a 304 (ETag), a changed one arrives fresh.
      const init = { method, headers, cache: "no-cache" };
      if (body !== undefined) init.body = JSON.stringify(body);
      return fetch(url, init);
    };
    let res = await send();
    if (res.status === 401 && retry && (await refreshAccess())) res = await send();
    if (res.status === 401 && auth.access) signOut("Your session has expired; please sign in again.");
    return res;
  }

  async function apiJson(path, options) {
    const res = await api(path, options);
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new ApiError(res.status, body);
    return body;
  }

  async function apiJsonl(path) {
    const res = await api(path);
    if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
    return ns.parseJsonl(await res.text());
  }

  /** Every item of a cursor-paginated list, following `next` (bounded, so a huge list cannot hang the page). */
  async function allPages(path, maxPages = 20) {
    const items = [];
    let next = path;
    for (let page = 0; next && page < maxPages; page += 1) {
      const body = await apiJson(next);
      items.push(...body.results);
      next = body.next;
    }
    return items;
  }

  function notice(text) {
    $("notice").textContent = text || "";
    $("notice").hidden = !text;
  }

  // --- Sign in / register ---------------------------------------------------------------------------------
  let registering = false;

  function setAuthMode(register) {
    registering = register;
    $("auth-title").textContent = register ? "Create an account" : "Sign in";
    $("auth-submit").textContent = register ? "Create account" : "Sign in";
    $("auth-toggle").textContent = register ? "Have an account? Sign in" : "New here? Create an account";
    $("auth-login").parentElement.hidden = register;
    $("auth-login").required = !register;
    for (const id of ["auth-email", "auth-username"]) {
      $(id).parentElement.hidden = !register;
      $(id).required = register;
    }
    $("auth-password").autocomplete = register ? "new-password" : "current-password";
    $("auth-error").textContent = "";
  }

  async function obtainTokens(credentials) {
    const res = await fetch(`${API}/auth/token`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(credentials),
    });
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new ApiError(res.status, body);
    saveTokens(body);
  }

  async function onAuthSubmit(event) {
    event.preventDefault();
    const password = $("auth-password").value;
    $("auth-submit").disabled = true;
    $("auth-error").textContent = "";
    try {
      if (registering) {
        const email = $("auth-email").value.trim();
        const res = await fetch(`${API}/auth/register`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ email, username: $("auth-username").value.trim(), password }),
        });
        if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
        await obtainTokens({ email, password });
      } else {
        const login = $("auth-login").value.trim();
        await obtainTokens(login.includes("@") ? { email: login, password } : { username: login, password });
      }
      $("auth-password").value = "";
      await start();
    } catch (error) {
      $("auth-error").textContent = error.message;
    } finally {
      $("auth-submit").disabled = false;
    }
  }

  function signOut(message) {
    const refresh = auth.refresh;
    if (refresh && auth.access) {
      // Best effort: blacklists the refresh token's family on the server.
      api("/auth/logout", { method: "POST", body: { refresh }, retry: false }).catch(() => {});
    }
    clearTokens();
    live.close();
    playing = null;
    overlay.stop();
    $("player").pause();
    $("player").removeAttribute("src");
    $("player-panel").hidden = true;
    $("app").hidden = true;
    $("sign-out").hidden = true;
    $("whoami").textContent = "";
    $("auth").hidden = false;
    notice(message || "");
  }

  async function start() {
    const me = await apiJson("/auth/me");
    $("whoami").textContent = `${me.username} (${me.plan})`;
    $("auth").hidden = true;
    $("app").hidden = false;
    $("sign-out").hidden = false;
    notice("");
    loadDashboard();
    await loadProjects(Number(sessionStorage.getItem("fw.project")) || null);
  }

  // --- Dashboard (optional endpoint: hidden unless it answers 200) ---------------------------------------
  const STATUS_ORDER = ["queued", "processing", "completed", "failed"];
  let dashboardTimer = null;
  let dashboardMissing = false; // A server without the endpoint (404) is not asked again until a reload.

  function formatRatio(value) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(3);
  }

  async function loadDashboard() {
    if (dashboardMissing) return;
    let stats;
    try {
      const res = await api("/dashboard/stats");
      dashboardMissing = res.status === 404;
      if (!res.ok) throw new Error(String(res.status));
      stats = await res.json();
    } catch {
      $("dashboard").hidden = true;
      return;
    }
    const figures = [
      ["Projects", stats.project_count],
      ["Videos", stats.video_count],
      ["Test sessions", stats.test_session_count],
      ["Active sessions", stats.active_test_sessions],
      ["Detections", stats.detection_count],
      ["Ground-truth boxes", stats.ground_truth_count],
      ["Average precision", formatRatio(stats.average_precision)],
      ["Average recall", formatRatio(stats.average_recall)],
      ["Average F1", formatRatio(stats.average_f1)],
    ];
    const list = $("dash-figures");
    list.replaceChildren();
    for (const [label, value] of figures) {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = label;
      dd.textContent = typeof value === "number" ? value.toLocaleString() : String(value ?? "–");
      list.append(dt, dd);
    }
    const byStatus = stats.videos_by_status || {};
    const entries = STATUS_ORDER.map((s) => [s, Number(byStatus[s] || 0)]);
    for (const [s, n] of Object.entries(byStatus)) if (!STATUS_ORDER.includes(s)) entries.push([s, Number(n)]);
    ns.drawBarChart($("dash-chart"), entries);
    $("dashboard").hidden = false;
  }

  function refreshDashboardSoon() {
    clearTimeout(dashboardTimer);
    dashboardTimer = setTimeout(loadDashboard, 1000);
  }

  // --- Projects -------------------------------------------------------------------------------------------
  const state = { project: null, projects: new Map(), videos: new Map(), next: null };

  function projectLabel(project) {
    return `${project.name} (${project.video_count})`;
  }

  async function loadProjects(selectId) {
    $("project-error").textContent = "";
    let projects = [];
    try {
      projects = await allPages("/projects?page_size=100");
    } catch (error) {
      $("project-error").textContent = error.message;
    }
    state.projects = new Map(projects.map((p) => [p.id, p]));
    const select = $("project-select");
    select.replaceChildren(...projects.map((p) => new Option(projectLabel(p), String(p.id))));
    $("upload-submit").disabled = projects.length === 0;
    if (!projects.length) {
      select.append(new Option("No projects yet: create one", ""));
      openProject(null);
      return;
    }
    const chosen = projects.find((p) => p.id === selectId) || projects[0];
    select.value = String(chosen.id);
    openProject(chosen.id);
  }

  async function onProjectCreate(event) {
    event.preventDefault();
    const name = $("project-name").value.trim();
    try {
      const project = await apiJson("/projects", { method: "POST", body: { name, description: "" } });
      $("project-name").value = "";
      await loadProjects(project.id);
      refreshDashboardSoon();
    } catch (error) {
      $("project-error").textContent = error.message;
    }
  }

  async function openProject(projectId) {
    state.project = projectId;
    state.videos = new Map();
    state.next = null;
    $("videos").replaceChildren();
    $("videos-more").hidden = true;
    $("videos-empty").hidden = true;
    live.close();
    if (projectId === null) return;
    sessionStorage.setItem("fw.project", String(projectId));
    await loadVideos(`/projects/${projectId}/videos?page_size=20`);
    live.connect(projectId);
  }

  // --- Videos list ----------------------------------------------------------------------------------------
  async function loadVideos(path) {
    const projectId = state.project;
    try {
      const page = await apiJson(path);
      if (state.project !== projectId) return; // The user switched project meanwhile.
      for (const video of page.results) renderVideo(video, false);
      state.next = page.next;
    } catch (error) {
      $("project-error").textContent = error.message;
    }
    $("videos-more").hidden = !state.next;
    $("videos-empty").hidden = state.videos.size > 0;
  }

  function formatBytes(n) {
    return n < 1048576 ? `${Math.ceil(n / 1024)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
  }

  function describe(video) {
    if (video.status === "completed") {
      const bits = [];
      if (video.duration_s) bits.push(`${video.duration_s.toFixed(1)} s`);
      if (video.width) bits.push(`${video.width}×${video.height}`);
      if (video.fps) bits.push(`${Number(video.fps.toFixed(2))} fps`);
      if (video.size_bytes) bits.push(formatBytes(video.size_bytes));
      return bits.join(" · ");
    }
    if (video.status === "failed") return "";
    return `${video.stage || video.status} · ${video.progress}%`;
  }

  /** Create or update the list item of one video (newest first when `prepend`). */
  function renderVideo(video, prepend) {
    const merged = { ...(state.videos.get(video.id) || {}), ...video };
    state.videos.set(video.id, merged);
    let item = $("videos").querySelector(`li[data-video-id="${video.id}"]`);
    if (!item) {
      item = $("video-item").content.firstElementChild.cloneNode(true);
      item.dataset.videoId = String(video.id);
      item.querySelector(".play").addEventListener("click", () => openPlayer(video.id));
      if (prepend) $("videos").prepend(item);
      else $("videos").append(item);
      $("videos-empty").hidden = true;
    }
    item.querySelector(".name").textContent = merged.original_name || `video ${merged.id}`;
    const status = item.querySelector(".status");
    status.textContent = merged.status;
    status.dataset.status = merged.status;
    item.dataset.status = merged.status;
    const bar = item.querySelector(".bar");
    bar.value = merged.status === "completed" ? 100 : merged.progress || 0;
    bar.hidden = TERMINAL.has(merged.status);
    item.querySelector(".detail").textContent = describe(merged);
    item.querySelector(".error").textContent = merged.error || "";
    item.querySelector(".play").disabled = merged.status !== "completed";
    const thumb = item.querySelector(".thumb");
    // Signed URLs differ on every read; only (re)load when the item has none, so the image does not flicker.
    if (merged.thumbnail_url && !thumb.getAttribute("src")) {
      thumb.src = merged.thumbnail_url;
      thumb.alt = `Thumbnail of ${merged.original_name}`;
    }
  }

  /** A progress/snapshot entry from the socket; terminal states fetch the full video (metadata, thumbnail).
   * A progress message about an unknown video (uploaded elsewhere) adds it; a snapshot also lists older
   * videos beyond the loaded page, which stay out until "Load more". */
  async function applyProgress(message, fromSnapshot = false) {
    const id = message.video_id;
    const known = state.videos.get(id);
    if (!known && fromSnapshot) return;
    if (known && known.status === message.status && known.progress === message.progress && known.stage === message.stage) return;
    if (known) {
      renderVideo({ id, status: message.status, stage: message.stage, progress: message.progress, error: message.error }, false);
    }
    if (!known || TERMINAL.has(message.status)) {
      try {
        const video = await apiJson(`/videos/${id}`);
        if (video.project_id === state.project) renderVideo(video, !known);
      } catch {
        // Deleted meanwhile: nothing to show.
      }
      if (TERMINAL.has(message.status)) refreshDashboardSoon();
    }
  }

  // --- Live progress: one socket per open project, snapshot on every (re)connect, backoff on failure ----
  const live = {
    ws: null,
    project: null,
    attempt: 0,
    retryTimer: null,
    pingTimer: null,

    connect(projectId) {
      this.close();
      this.project = projectId;
      this.open();
    },

    open() {
      if (!auth.access || this.project === null) return;
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const url = `${scheme}://${location.host}/ws/projects/${this.project}/?token=${encodeURIComponent(auth.access)}`;
      const ws = new WebSocket(url);
      this.ws = ws;
      this.status("connecting…");
      ws.addEventListener("open", () => {
        // The server closes sockets idle for 60 s; a ping every 25 s keeps a quiet one open.
        this.pingTimer = setInterval(() => ws.send(JSON.stringify({ type: "ping" })), 25000);
      });
      ws.addEventListener("message", (event) => {
        const message = JSON.parse(event.data);
        if (message.type === "snapshot") {
          this.attempt = 0;
          this.status("● live");
          for (const entry of message.videos || []) applyProgress(entry, true);
        } else if (message.type === "progress") {
          applyProgress(message);
        } else if (message.type === "session" && TERMINAL.has(message.status)) {
          refreshDashboardSoon();
        }
      });
      ws.addEventListener("close", (event) => this.closed(ws, event.code));
    },

    async closed(ws, code) {
      clearInterval(this.pingTimer);
      if (this.ws !== ws) return; // Replaced or closed on purpose.
      this.ws = null;
      if (code === 4404) {
        this.status("project not found");
        return;
      }
      if (code === 4401 && !(await refreshAccess())) {
        signOut("Your session has expired; please sign in again.");
        return;
      }
      // Exponential backoff with jitter, capped at 30 s, so a restarting server is not stampeded.
      const delay = Math.min(30000, 1000 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      this.status(`reconnecting in ${Math.ceil(delay / 1000)} s…`);
      this.retryTimer = setTimeout(() => this.open(), delay);
    },

    close() {
      clearTimeout(this.retryTimer);
      clearInterval(this.pingTimer);
      const ws = this.ws;
      this.ws = null;
      this.project = null;
      this.attempt = 0;
      if (ws) ws.close(1000);
      this.status("");
    },

    status(text) {
      $("live").textContent = text;
    },
  };

  // --- Upload with a progress bar (XMLHttpRequest: fetch has no upload progress) ------------------------
  function sendFile(projectId, file) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `${API}/projects/${projectId}/videos`);
      xhr.setRequestHeader("Authorization", `Bearer ${auth.access}`);
      xhr.upload.addEventListener("progress", (event) => {
        if (!event.lengthComputable) return;
        const percent = Math.floor((event.loaded / event.total) * 100);
        $("upload-progress").value = percent;
        $("upload-status").textContent = `Uploading… ${percent}% of ${formatBytes(event.total)}`;
      });
      const done = () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          body = null;
        }
        resolve({ status: xhr.status, body });
      };
      xhr.addEventListener("load", done);
      xhr.addEventListener("error", done);
      xhr.addEventListener("abort", done);
      const form = new FormData();
      form.append("file", file);
      xhr.send(form);
    });
  }

  async function onUpload(event) {
    event.preventDefault();
    const file = $("upload-file").files[0];
    const projectId = state.project;
    if (!file || projectId === null) return;
    $("upload-submit").disabled = true;
    $("upload-progress").hidden = false;
    $("upload-progress").value = 0;
    try {
      // Refresh first when the token is about to expire, rather than re-sending a large body after a 401.
      if (accessTtl() < 60) await refreshAccess();
      let result = await sendFile(projectId, file);
      if (result.status === 401 && (await refreshAccess())) result = await sendFile(projectId, file);
      if (result.status === 202) {
        $("upload-progress").value = 100;
        $("upload-status").textContent = `Uploaded ${result.body.original_name}; processing…`;
        $("upload-file").value = "";
        if (state.project === projectId) renderVideo(result.body, true);
        const project = state.projects.get(projectId);
        const option = $("project-select").querySelector(`option[value="${projectId}"]`);
        if (project && option) {
          project.video_count += 1;
          option.text = projectLabel(project);
        }
        refreshDashboardSoon();
      } else {
        $("upload-progress").hidden = true;
        $("upload-status").textContent = `Upload failed: ${errorText(result.status, result.body)}`;
      }
    } finally {
      $("upload-submit").disabled = false;
    }
  }

  // --- Player -------------------------------------------------------------------------------------------
  let overlay = null;
  let playing = null;

  async function openPlayer(videoId) {
    playing = videoId;
    $("player-error").textContent = "";
    $("player-panel").hidden = false;
    const sessions = $("session-select");
    sessions.replaceChildren(new Option("Ground truth only", ""));
    try {
      const video = await apiJson(`/videos/${videoId}`); // A fresh signed file URL.
      $("player-title").textContent = video.original_name;
      overlay.load(video);
      const player = $("player");
      player.src = video.file_url;
      player.load();
      $("player-panel").scrollIntoView({ behavior: "smooth", block: "start" });
      const [truth, sessionList] = await Promise.all([
        apiJsonl(`/videos/${videoId}/ground-truth?format=jsonl`),
        allPages(`/videos/${videoId}/test-sessions?page_size=100`, 5),
      ]);
      if (playing !== videoId) return;
      overlay.setTruth(truth);
      for (const s of sessionList) {
        const f1 = s.f1 === null ? "" : `, F1 ${s.f1.toFixed(3)}`;
        sessions.append(new Option(`#${s.id} ${s.model_name} (${s.status}${f1})`, String(s.id)));
      }
    } catch (error) {
      $("player-error").textContent = error.message;
    }
  }

  async function onSessionChange() {
    const sessionId = $("session-select").value;
    const videoId = playing;
    $("player-error").textContent = "";
    try {
      const rows = sessionId ? await apiJsonl(`/test-sessions/${sessionId}/detections?format=jsonl`) : [];
      if (playing === videoId) overlay.setDetections(rows);
    } catch (error) {
      $("player-error").textContent = error.message;
    }
  }

  // --- Wiring (no inline handlers: the page runs under a strict Content-Security-Policy) ----------------
  function init() {
    overlay = new ns.Overlay($("player"), $("overlay"), $("overlay-info"));
    $("player").addEventListener("error", () => {
      if ($("player").getAttribute("src")) $("player-error").textContent = "This browser cannot play this video's format.";
    });
    $("auth-form").addEventListener("submit", onAuthSubmit);
    $("auth-toggle").addEventListener("click", (event) => {
      event.preventDefault();
      setAuthMode(!registering);
    });
    $("sign-out").addEventListener("click", () => signOut(""));
    $("project-form").addEventListener("submit", onProjectCreate);
    $("project-select").addEventListener("change", (event) => openProject(Number(event.target.value) || null));
    $("upload-form").addEventListener("submit", onUpload);
    $("videos-more").addEventListener("click", () => state.next && loadVideos(state.next));
    $("session-select").addEventListener("change", onSessionChange);
    setAuthMode(false);
    // A rejected session (401 after one refresh) signs out; a server that is down keeps the tokens for a reload.
    if (auth.refresh) start().catch((error) => (error.status === 401 ? signOut("") : notice(error.message)));
  }

  init();
})(window.Framewise);
