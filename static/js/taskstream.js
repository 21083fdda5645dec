// Taskstream's browser client: follow tasks over SSE, WebSocket or polling, one way of
// listening whatever the transport. An ES module with no dependency and no build step.
//
//   import { TaskstreamClient } from "/static/js/taskstream.js";
//   const client = new TaskstreamClient({ auth: { accessToken: () => token, refresh } });
//   const sub = client.subscribeTask(taskId, { onProgress: (t) => bar.value = t.progress });
//
// Every subscription of a client shares ONE connection (browsers allow six per origin):
// SSE follows all of the user's tasks on `/api/v1/events` (resumed by its cursor), the
// WebSocket carries one subscribe frame per task (resumed by each task's last id), and
// polling asks each task's status every `pollInterval` with its ETag. "auto" tries SSE,
// then WebSocket, then polling, moving on after `maxRetries` failed connections. Several
// subscriptions to one task (two components showing it) share its place on the wire: a
// later one starts from what the first has seen.

// The types are declared once, in taskstream.d.ts (what the package publishes); this file
// is checked against them (`tsc -p tests/browser/js/tsconfig.client.json`, checkJs strict):
// "./taskstream.js" below resolves to those declarations.
/** @typedef {import("./taskstream.js").TaskStatus} TaskStatus */
/** @typedef {import("./taskstream.js").Transport} Transport */
/** @typedef {import("./taskstream.js").EventType} EventType */
/** @typedef {import("./taskstream.js").Task} Task */
/** @typedef {import("./taskstream.js").Handlers} Handlers */
/** @typedef {import("./taskstream.js").SubscribeOptions} SubscribeOptions */
/** @typedef {import("./taskstream.js").ClientOptions} ClientOptions */
/** @typedef {import("./taskstream.js").Tokens} Tokens */
/** @typedef {import("./taskstream.js").Subscription} DeclaredSubscription */
/** @typedef {import("./taskstream.js").TaskstreamClient} DeclaredClient */

/** The statuses a task ends in. @type {ReadonlySet<TaskStatus>} */
export const ENDED = new Set(/** @type {TaskStatus[]} */ (["completed", "failed", "cancelled"]));
const TYPES = ["status", "progress", "partial", "completed", "failed", "cancelled"];
const ORDER = /** @type {Transport[]} */ (["sse", "ws", "poll"]);
/**
 * What a 429 or 503 asks the client to wait (its `Retry-After`, in ms); 0 otherwise.
 * @param {Response} response
 */
function retryAfterMs(response) {
  if (response.status !== 429 && response.status !== 503) return 0;
  const seconds = Number(response.headers.get("Retry-After"));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0;
}

/** The wait a failed request carried (`_ticket`). @param {unknown} error */
function waitOf(error) {
  return /** @type {{waitMs?: number}} */ (error)?.waitMs ?? 0;
}

const HANDLER = /** @type {const} */ ({
  status: "onStatus", progress: "onProgress", completed: "onCompleted",
  failed: "onFailed", cancelled: "onCancelled",
});

/**
 * One task's listener: its handlers, and what it has seen.
 * @implements {DeclaredSubscription}
 */
export class Subscription {
  /** @param {TaskstreamClient} client @param {string} taskId @param {Handlers} handlers */
  constructor(client, taskId, handlers) {
    this.client = client;
    this.taskId = taskId;
    this.handlers = handlers;
    /** @type {string|null} the last event id of this task (WebSocket resume) */
    this.lastEventId = null;
    /** @type {Task|null} */
    this.task = null;
    this.text = "";
    this.closed = false;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.timer = undefined;
    /** @type {string|null} polling's ETag */
    this.etag = null;
  }

  /** The transport now in use. */
  get transport() { return this.client.transport; }

  /** Stop listening (the task goes on). */
  unsubscribe() { this.client._drop(this); }

  /** Ask the server to cancel the task. @returns {Promise<Task>} */
  cancel() { return this.client.cancelTask(this.taskId); }

  /** @param {string} type @param {Task & {text?: string, offset?: number}} data @param {string|null} id */
  _deliver(type, data, id) {
    if (this.closed) return;
    if (this.task && data.version <= this.task.version && type !== "status") return; // seen
    if (id) this.lastEventId = id;
    if (type === "status") this.text = data.text ?? this.text;
    const task = { ...data, text: undefined };
    this.task = task;
    if (type === "partial") {
      const text = data.text ?? "";
      this.text += text;
      this.handlers.onPartial?.(task, text);
      this.handlers.onProgress?.(task);
    } else {
      const name = HANDLER[/** @type {keyof typeof HANDLER} */ (type)];
      if (name) this.handlers[name]?.(task);
      // a task first seen already ended (a snapshot, a poll): its end is news all the same
      if (type !== task.status && ENDED.has(task.status)) {
        this.handlers[HANDLER[/** @type {keyof typeof HANDLER} */ (task.status)]]?.(task);
      }
    }
    this.handlers.onEvent?.(/** @type {EventType} */ (type), task);
    if (ENDED.has(task.status)) this.client._drop(this);
  }
}

/** @implements {DeclaredClient} */
export class TaskstreamClient {
  /** @param {ClientOptions} options */
  constructor(options) {
    this.baseUrl = options.baseUrl ?? "";
    this.auth = options.auth;
    this.wanted = options.transport ?? "auto";
    this.pollInterval = options.pollInterval ?? 2000;
    this.maxRetries = options.maxRetries ?? 5;
    this.retryDelay = options.retryDelay ?? 1000;
    /** @type {Map<string, Subscription[]>} each followed task's subscriptions, first first */
    this.subs = new Map();
    /** @type {Transport|null} */
    this.transport = null;
    /** @type {Transport|null} the transport subscribers were last told of */
    this.announced = null;
    this.failures = 0;
    this.down = false;  // a connection failed and none has worked since
    /** @type {EventSource|null} */ this.source = null;
    /** @type {WebSocket|null} */ this.socket = null;
    /** @type {ReturnType<typeof setTimeout>|undefined} */ this.poller = undefined;
    /** @type {ReturnType<typeof setTimeout>|undefined} */ this.retry = undefined;
    /** @type {string|null} the all-tasks stream's cursor */
    this.cursor = null;
    /** @type {Map<string, {type: string, data: any, id: string, text: string}>} */
    this.seen = new Map(); // the shared SSE stream's latest per task, for late subscribers
    // +1 at every disconnect: a connect queued or half-opened before it is dropped, so that
    // subscriptions that come and go at once (React's StrictMode) never open two
    this.epoch = 0;
  }

  /**
   * Follow one task until it ends (or `unsubscribe()`).
   * @param {string} taskId @param {Handlers} handlers @param {SubscribeOptions} [options]
   * @returns {Subscription}
   */
  subscribeTask(taskId, handlers, options = {}) {
    const sub = new Subscription(this, taskId, handlers);
    const peers = this.subs.get(taskId);
    if (peers) peers.push(sub);
    else this.subs.set(taskId, [sub]);
    if (options.timeout) {
      sub.timer = setTimeout(() => { handlers.onTimeout?.(); this._drop(sub); }, options.timeout);
    }
    // never call a handler before the caller holds the subscription
    if (peers) {
      // the task is on the wire already: start from what its first subscription has seen
      queueMicrotask(() => {
        const lead = peers[0];
        if (lead && lead !== sub && lead.task && !sub.task) {
          sub._deliver("status", { ...lead.task, text: lead.text }, lead.lastEventId);
        }
      });
    } else if (!this.transport) {
      const first = this._first();
      this.transport = first; // now: the subscriptions made meanwhile share this connection
      const epoch = this.epoch;
      queueMicrotask(() => { if (this.epoch === epoch) this._connect(first); });
    } else {
      queueMicrotask(() => this._added(sub));
    }
    return sub;
  }

  /**
   * Follow several tasks on the same connection; handlers get the task in every call.
   * @param {string[]} taskIds @param {Handlers} handlers @param {SubscribeOptions} [options]
   * @returns {{subscriptions: Subscription[], unsubscribe: () => void}}
   */
  subscribeTasks(taskIds, handlers, options = {}) {
    const subscriptions = taskIds.map((id) => this.subscribeTask(id, handlers, options));
    return { subscriptions, unsubscribe: () => subscriptions.forEach((s) => s.unsubscribe()) };
  }

  /**
   * Ask the server to cancel a task (its subscriptions then hear `cancelled`).
   * @param {string} taskId @returns {Promise<Task>}
   */
  async cancelTask(taskId) {
    const response = await this.request(`/api/v1/tasks/${taskId}/cancel`, { method: "POST" });
    const body = await response.json();
    if (!body.success) throw new Error(`${body.error.code}: ${body.error.message}`);
    return body.data;
  }

  /** Close the connection and every subscription. */
  close() {
    for (const sub of this._all()) this._drop(sub);
    this._disconnect();
  }

  /** Every subscription, a copy (dropping one while going through them is safe). */
  _all() { return [...this.subs.values()].flat(); }

  /**
   * The task's subscriptions get what the wire said of it.
   * @param {string} type @param {any} data @param {string|null} id
   */
  _deliver(type, data, id) {
    for (const sub of [...(this.subs.get(data.taskId) ?? [])]) sub._deliver(type, data, id);
  }

  // --- transports ------------------------------------------------------------------------

  /** @returns {Transport} */
  _first() {
    if (this.wanted !== "auto") return this.wanted;
    if (typeof EventSource === "function") return "sse";
    return typeof WebSocket === "function" ? "ws" : "poll";
  }

  /** @param {Transport} transport */
  _connect(transport) {
    this.transport = transport;
    if (this.announced !== transport) {
      this.announced = transport;
      for (const sub of this._all()) sub.handlers.onTransport?.(transport);
    }
    if (transport === "sse") this._openSse();
    else if (transport === "ws") this._openWs();
    else this._poll();
  }

  _disconnect() {
    this.epoch += 1;
    this.source?.close();
    this.source = null;
    if (this.socket) { this.socket.onclose = null; this.socket.close(); this.socket = null; }
    clearTimeout(this.poller);
    clearTimeout(this.retry);
  }

  /**
   * A connection failed: try again with backoff (no sooner than a server's `Retry-After`,
   * spread), or move on to the next transport.
   * @param {number} [waitMs] what the server asked for, when it said
   */
  _failed(waitMs = 0) {
    this._disconnect();
    if (!this.subs.size) { this.transport = this.announced = null; return; }
    this.failures += 1;
    if (!this.down) {
      this.down = true;
      for (const sub of this._all()) sub.handlers.onConnection?.(false);
    }
    const current = /** @type {Transport} */ (this.transport);
    if (this.failures > this.maxRetries) {
      const next = ORDER[ORDER.indexOf(current) + 1];
      if (this.wanted !== "auto" || !next) {
        this._giveUp(new Error(`could not connect over ${current} after ${this.maxRetries} retries`));
        return;
      }
      this.failures = 0;
      this._connect(next);
      return;
    }
    const backoff = Math.min(30000, this.retryDelay * 2 ** (this.failures - 1)) * (0.5 + Math.random());
    const delay = Math.max(backoff, waitMs * (1 + Math.random() / 2));
    this.retry = setTimeout(() => this._connect(current), delay);
  }

  /** The connection is fine again. */
  _opened() {
    this.failures = 0;
    if (this.down) {
      this.down = false;
      for (const sub of this._all()) sub.handlers.onConnection?.(true);
    }
  }

  /** Told the token expired: refresh it, then reconnect at once. */
  async _reauthenticate() {
    this._disconnect();
    try {
      await this.auth.refresh();
    } catch (error) {
      this._giveUp(/** @type {Error} */ (error));
      return;
    }
    if (this.subs.size) this._connect(/** @type {Transport} */ (this.transport));
  }

  /** Told the session was ended (logout, password reset): stop, and say why. */
  _signedOut() {
    this._disconnect();
    this._giveUp(new Error("TOKEN_REVOKED: the session has ended; sign in again"));
  }

  /** These subscriptions (by default every one) end with `error`. @param {Error} error */
  _giveUp(error, subs = this._all()) {
    for (const sub of subs) { sub.handlers.onError?.(error); this._drop(sub); }
  }

  /** A new task's subscription, while connected. @param {Subscription} sub */
  _added(sub) {
    if (this.transport === "ws" && this.socket?.readyState === WebSocket.OPEN) this._subscribe(sub);
    if (this.transport === "sse") this._fromSeen(sub);
    if (this.transport === "poll") { clearTimeout(this.poller); this._poll(); }
  }

  /** @param {Subscription} sub */
  _drop(sub) {
    if (sub.closed) return;
    sub.closed = true;
    clearTimeout(sub.timer);
    const peers = (this.subs.get(sub.taskId) ?? []).filter((peer) => peer !== sub);
    if (peers.length) { this.subs.set(sub.taskId, peers); return; }  // still followed
    this.subs.delete(sub.taskId);
    if (this.transport === "ws" && this.socket?.readyState === WebSocket.OPEN && !(sub.task && ENDED.has(sub.task.status))) {
      this.socket.send(JSON.stringify({ type: "unsubscribe", taskId: sub.taskId }));
    }
    if (!this.subs.size) {
      this._disconnect();
      this.transport = this.announced = null;
      this.failures = 0;
      this.down = false;
    }
  }

  // SSE: one stream of all the user's tasks, resumed by its cursor ------------------------

  async _openSse() {
    const epoch = this.epoch;
    let ticket;
    try {
      ticket = await this._ticket();
    } catch (error) { if (this.epoch === epoch) this._failed(waitOf(error)); return; }
    if (this.epoch !== epoch) return;  // dropped, or another connect began, meanwhile
    const query = new URLSearchParams({ ticket });
    if (this.cursor) query.set("lastEventId", this.cursor);
    const source = new EventSource(`${this.baseUrl}/api/v1/events?${query}`);
    this.source = source;
    source.onopen = () => {
      this._opened();
      for (const sub of this._all()) this._fromSeen(sub);
    };
    for (const type of TYPES) {
      source.addEventListener(type, (message) => {
        const event = /** @type {MessageEvent} */ (message);
        const data = JSON.parse(event.data);
        this.cursor = event.lastEventId || this.cursor;
        const own = this._ownId(event.lastEventId, data.taskId);
        this._remember(type, data, own);
        this._deliver(type, data, own);
      });
    }
    source.addEventListener("reauthenticate", () => this._reauthenticate());
    source.addEventListener("revoked", () => this._signedOut());
    source.addEventListener("reconnect", () => { this._disconnect(); this.retry = setTimeout(() => this._connect("sse"), 1000); });
    // a ticket is single use: never let EventSource reconnect by itself
    source.onerror = () => { if (this.source === source) this._failed(); };
  }

  /** @param {string} cursor @param {string} taskId */
  _ownId(cursor, taskId) {
    const part = cursor.split("|")[1]?.split(",").find((p) => p.startsWith(`${taskId}=`));
    return part ? part.slice(taskId.length + 1) : null;
  }

  /**
   * What the shared stream said last of each task, so that a late subscriber starts whole.
   * @param {string} type @param {any} data @param {string|null} id
   */
  _remember(type, data, id) {
    const known = this.seen.get(data.taskId);
    const text = type === "status" ? (data.text ?? "") : (known?.text ?? "") + (type === "partial" ? data.text ?? "" : "");
    this.seen.set(data.taskId, { type, data, id: id ?? "", text });
  }

  /**
   * A subscriber joins a stream already under way: give it the task as last seen, or ask.
   * @param {Subscription} sub
   */
  async _fromSeen(sub) {
    const waiting = () => (this.subs.get(sub.taskId) ?? []).filter((peer) => !peer.task);
    const known = this.seen.get(sub.taskId);
    if (known) {
      for (const peer of waiting()) peer._deliver("status", { ...known.data, text: known.text }, known.id);
      return;
    }
    // a task the stream does not follow (finished before it opened): its status says so
    const response = await this.request(`/api/v1/tasks/${sub.taskId}/status`);
    if (response.ok) {
      const data = (await response.json()).data;
      if (ENDED.has(data.status)) for (const peer of waiting()) peer._deliver("status", data, null);
    }
  }

  // WebSocket: one socket, a subscribe frame per task -------------------------------------

  async _openWs() {
    const epoch = this.epoch;
    let ticket;
    try {
      ticket = await this._ticket();
    } catch (error) { if (this.epoch === epoch) this._failed(waitOf(error)); return; }
    if (this.epoch !== epoch) return;  // dropped, or another connect began, meanwhile
    const url = new URL(`${this.baseUrl}/api/v1/ws`, location.href);
    url.protocol = url.protocol.replace("http", "ws");
    url.searchParams.set("ticket", ticket);
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      this._opened();
      for (const [first] of this.subs.values()) this._subscribe(first);
    };
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.event === "reauthenticate" || frame.event === "revoked") return;  // see onclose
      if (frame.event === "error") {
        this._giveUp(new Error(`${frame.error.code}: ${frame.error.message}`), [...(this.subs.get(frame.taskId) ?? [])]);
        return;
      }
      if (frame.data?.taskId) this._deliver(frame.event, frame.data, frame.id);
    };
    socket.onclose = (close) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (close.code === 4401) this._reauthenticate();
      else if (close.code === 4403) this._signedOut();
      else this._failed();
    };
  }

  /** @param {Subscription} sub */
  _subscribe(sub) {
    /** @type {{type: string, taskId: string, lastEventId?: string}} */
    const frame = { type: "subscribe", taskId: sub.taskId };
    if (sub.lastEventId) frame.lastEventId = sub.lastEventId;
    this.socket?.send(JSON.stringify(frame));
  }

  // Polling: each task's status, with its ETag --------------------------------------------

  async _poll() {
    for (const [taskId, [lead]] of [...this.subs]) {
      let response;
      try {
        response = await this.request(`/api/v1/tasks/${taskId}/status`, {
          headers: lead.etag ? { "If-None-Match": lead.etag } : {},
        });
      } catch { this._failed(); return; }
      if (response.status === 304) continue;
      const subs = [...(this.subs.get(taskId) ?? [])];
      if (response.status === 404) { this._giveUp(new Error("TASK_NOT_FOUND"), subs); continue; }
      if (!response.ok) { this._failed(retryAfterMs(response)); return; }
      this._opened();
      const etag = response.headers.get("ETag");
      const data = (await response.json()).data;
      for (const sub of subs) {
        sub.etag = etag;
        sub._deliver(ENDED.has(data.status) ? data.status : sub.task ? "progress" : "status", data, null);
      }
    }
    if (this.subs.size && this.transport === "poll") {
      clearTimeout(this.poller);
      this.poller = setTimeout(() => this._poll(), this.pollInterval);
    }
  }

  // HTTP with the access token ------------------------------------------------------------

  /**
   * An API request with the access token (refreshed once on a 401).
   * @param {string} path @param {RequestInit} [init] @returns {Promise<Response>}
   */
  async request(path, init = {}) {
    const send = async () => fetch(this.baseUrl + path, {
      ...init,
      headers: { ...init.headers, Authorization: `Bearer ${await this.auth.accessToken()}` },
    });
    let response = await send();
    if (response.status === 401) {
      await this.auth.refresh();
      response = await send();
    }
    return response;
  }

  /** A single-use ticket for a stream URL (EventSource and WebSocket cannot send headers). */
  async _ticket() {
    const response = await this.request("/api/v1/stream-tickets", { method: "POST" });
    if (!response.ok) {
      // 503 (the server holds all the streams it can) or 429: come back when it says
      throw Object.assign(new Error(`no stream ticket: ${response.status}`), { waitMs: retryAfterMs(response) });
    }
    return (await response.json()).data.ticket;
  }
}

/**
 * The smallest `auth` for a client: tokens kept in sessionStorage, refreshed on demand.
 * @param {string} [baseUrl]
 * @returns {ReturnType<typeof import("./taskstream.js").storedSession>}
 */
export function storedSession(baseUrl = "") {
  const key = "taskstream.tokens";
  const read = () => JSON.parse(sessionStorage.getItem(key) ?? "null");
  return {
    /** @param {Tokens} tokens */
    save(tokens) { sessionStorage.setItem(key, JSON.stringify(tokens)); },
    signedIn() { return read() !== null; },
    accessToken() { return read()?.accessToken ?? ""; },
    async refresh() {
      const tokens = read();
      const response = await fetch(`${baseUrl}/api/v1/auth/refresh`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ refreshToken: tokens?.refreshToken ?? "" }),
      });
      const body = await response.json();
      if (!body.success) { sessionStorage.removeItem(key); throw new Error(body.error.code); }
      this.save(body.data.tokens);
      return body.data.tokens.accessToken;
    },
    forget() { sessionStorage.removeItem(key); },
  };
}
