// The demo page: a founder's business plan, written live, then evaluated, simulated and
// exported. Everything it follows goes through the client library.
import { stageLabel } from "/static/js/stages.js";
import { ENDED, TaskstreamClient, storedSession } from "/static/js/taskstream.js";

const $ = (id) => /** @type {HTMLElement & Record<string, any>} */ (document.getElementById(id));
const session = storedSession();
const query = new URLSearchParams(location.search);
const CURRENT = "taskstream.current";
const GUEST = "taskstream.guest";  // signed in as a made-up guest

const KINDS = {
  business_plan: "사업계획서", demo: "데모 작업", evaluation: "평가", financial: "재무 시뮬레이션",
  export: "내보내기", email: "메일",
};
const STATUS = {
  pending: "대기", processing: "진행 중", completed: "완료", failed: "실패", cancelled: "취소됨",
  unknown: "알 수 없음",  // the client gave up: the page cannot tell
};
// the evaluation's criteria, as the founder reads them
const CRITERIA = {
  market: "시장성", feasibility: "실현 가능성", differentiation: "차별성",
  financial_soundness: "재무 건전성", team: "팀 역량",
};

/** @type {TaskstreamClient} */
let client;
/** @type {import("/static/js/taskstream.js").Subscription|null} */
let current = null;
/** @type {{businessPlanId: string, projectId: string}|null} */
let plan = JSON.parse(sessionStorage.getItem("taskstream.plan") ?? "null");

function chosenTransport() {
  const asked = query.get("transport") ?? sessionStorage.getItem("taskstream.transport") ?? "auto";
  const radio = document.querySelector(`input[name=transport][value=${asked}]`);
  if (radio) /** @type {HTMLInputElement} */ (radio).checked = true;
  return /** @type {"auto"|"sse"|"ws"|"poll"} */ (asked);
}

function newClient() {
  return new TaskstreamClient({
    auth: session,
    transport: chosenTransport(),
    pollInterval: Number(query.get("pollInterval") ?? 2000),
    retryDelay: Number(query.get("retryDelay") ?? 1000),
    maxRetries: Number(query.get("maxRetries") ?? 5),
  });
}

// the API's refusals a founder meets, in their words (others keep the API's message)
const REASONS = {
  RATE_LIMITED: "요청이 너무 잦습니다. 잠시 뒤 다시 해 주세요",
  TOO_MANY_TASKS: "진행 중인 작업이 너무 많습니다. 하나가 끝난 뒤 다시 해 주세요",
  PLAN_NOT_FOUND: "계획서를 찾을 수 없습니다. 계획서를 다시 만들어 주세요",
  PROJECT_NOT_FOUND: "프로젝트를 찾을 수 없습니다. 계획서를 다시 만들어 주세요",
  ALREADY_VERIFIED: "이미 확인된 주소입니다",
  EXPORT_GONE: "파일이 만료되었습니다. 다시 내보내 주세요",
  EXPORT_STORE_UNAVAILABLE: "파일 저장소에 닿지 않습니다. 잠시 뒤 다시 해 주세요",
  UNAVAILABLE: "서버가 잠시 바쁩니다. 잠시 뒤 다시 해 주세요",
  // how a task ended, when it failed
  INTERNAL_ERROR: "서버에서 뜻밖의 오류가 났습니다. 다시 해 보시고, 계속되면 알려 주세요",
  TIMEOUT: "시간 안에 끝나지 않았습니다. 다시 해 주세요",
  WORKER_LOST: "작업하던 서버가 멈췄습니다. 다시 해 주세요",
  UPSTREAM: "AI 서비스가 응답하지 않았습니다. 잠시 뒤 다시 해 주세요",
  UPSTREAM_REJECTED: "AI 서비스가 요청을 받지 않았습니다",
  SMTP: "메일을 보내지 못했습니다. 잠시 뒤 다시 해 주세요",
  NOTHING_TO_EXPORT: "내보낼 내용이 없습니다. 계획서를 먼저 만들어 주세요",
  DEMO_FAILURE: "데모 작업이 요청한 대로 실패했습니다",
};

/** What went wrong, in words for the founder: the API's refusal, or the network's. */
function reason(error) {
  const message = error?.message ?? String(error);
  if (/Failed to fetch|NetworkError|Load failed|could not connect/.test(message)) return "서버에 연결할 수 없습니다. 인터넷 연결을 확인해 주세요";
  const code = error?.code ?? "";
  return REASONS[code] ?? REASONS[code.split("_")[0]] ?? message;  // UPSTREAM_TIMEOUT → UPSTREAM
}

/** A failed task's end as an Error: its code and its message. */
function failure(task) {
  return Object.assign(new Error(task.errorMessage), { code: task.errorCode });
}

/** Run a button's action once at a time: disabled and marked busy until it is done; its
 *  failure is said in a toast, never left uncaught. */
async function busy(button, what, action) {
  if (button.getAttribute("aria-busy") === "true") return;
  button.setAttribute("aria-busy", "true");
  button.disabled = true;
  try {
    await action();
  } catch (error) {
    toast(`${what}: ${reason(error)}`, true);
  } finally {
    button.removeAttribute("aria-busy");
    button.disabled = false;
  }
}

/** The connection banner: shown while the client is trying again, gone when it is back. */
function connection(state) {
  const banner = $("connection");
  banner.hidden = state === "up";
  banner.classList.toggle("lost", state === "lost");
  $("reconnect").hidden = state !== "lost";
  $("connection-text").textContent = state === "lost"
    ? "서버에 연결할 수 없어 진행 상황을 알 수 없습니다. 작업은 서버에서 계속됩니다."
    : "연결이 끊겼습니다. 다시 연결하는 중…";
}

function toast(text, bad = false) {
  const note = document.createElement("p");
  note.className = bad ? "toast bad" : "toast";
  note.textContent = text;
  $("toasts").append(note);
  setTimeout(() => note.remove(), 6000);
}

let announced = "";

/** Said to screen readers once per status or stage, not at every percent. */
function announce(task) {
  const status = STATUS[task.status] ?? task.status;
  const said = ENDED.has(task.status)
    ? status : [status, stageLabel(task.currentStage)].filter(Boolean).join(", ");
  if (said !== announced) $("announce").textContent = announced = said;
}

function render(task) {
  announce(task);
  $("bar").value = task.progress ?? 0;
  $("percent").textContent = String(task.progress ?? 0);
  $("status").textContent = STATUS[task.status] ?? task.status;
  $("status").dataset.status = task.status;
  $("stage").textContent = task.currentStage ? `· ${stageLabel(task.currentStage)} ·` : "";
  $("eta").textContent = task.estimatedRemaining ? `· 약 ${Math.ceil(task.estimatedRemaining)}초 남음` : "";
  $("cancel").disabled = ENDED.has(task.status);
}

/** The API's refusal as an Error carrying its code and its per-field details. */
function refusal(error) {
  return Object.assign(new Error(error.message), { code: error.code, details: error.details });
}

/** POST a JSON body as the signed-in founder (`signedIn: false`: before signing in); the
 *  answer's data, or its refusal thrown. */
async function api(path, body, { signedIn = true } = {}) {
  const init = { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? {}) };
  const response = await (signedIn ? client.request(path, init) : fetch(path, init));
  const answer = await response.json();
  if (!answer.success) throw refusal(answer.error);
  return answer.data;
}

/** `api`, for a form: a refusal that names its fields is said under them. */
async function sendForm(form, path, body) {
  clearErrors(form);
  try {
    return await api(path, body);
  } catch (error) {
    if (showErrors(form, error)) throw new Error("표시한 항목을 확인해 주세요");
    throw error;
  }
}

// what each field's refusal says to the founder (the API's details name the field)
const FIELD_ERRORS = {
  email: "올바른 이메일 주소를 입력해 주세요",
  password: "비밀번호는 8자 이상이어야 합니다",
  name: "이름을 입력해 주세요",
};
// refusals that belong to one field though the API names none
const CODE_FIELDS = {
  EMAIL_TAKEN: ["email", "이미 가입된 이메일입니다. 로그인해 주세요"],
  INVALID_CREDENTIALS: ["password", "이메일 또는 비밀번호가 맞지 않습니다"],
};

/** Clear a form's field errors. */
function clearErrors(form) {
  for (const note of form.querySelectorAll(".field-error")) note.remove();
  for (const field of form.querySelectorAll("[aria-invalid]")) {
    field.removeAttribute("aria-invalid");
    field.removeAttribute("aria-describedby");
  }
}

/** A field's refusal in Korean, from the API's (pydantic's) English words. */
function fieldError(detail) {
  if (FIELD_ERRORS[detail.field]) return FIELD_ERRORS[detail.field];
  const [, rule, limit] = /(at least|at most|greater than or equal to|less than or equal to|greater than|less than) (-?[\d.]+)/.exec(detail.message) ?? [];
  if (rule === "at least") return limit === "1" ? "이 항목을 채워 주세요" : `${limit}자 이상 입력해 주세요`;
  if (rule === "at most") return `${Number(limit).toLocaleString("ko-KR")}자 이내로 줄여 주세요`;
  if (rule) {
    const words = { "greater than or equal to": "이상", "less than or equal to": "이하", "greater than": "초과", "less than": "미만" };
    return `${Number(limit).toLocaleString("ko-KR")} ${words[rule]}의 값을 입력해 주세요`;
  }
  return "이 항목을 확인해 주세요";
}

/** Each refused field says why, under itself; the first is focused. True when any was shown. */
function showErrors(form, error) {
  const found = (error.details ?? []).map((d) => [d.field.split(".").pop(), fieldError(d)]);
  if (CODE_FIELDS[error.code]) found.push(CODE_FIELDS[error.code]);
  let first = null;
  for (const [name, message] of found) {
    const field = form.elements.namedItem(name);
    if (!(field instanceof HTMLElement)) continue;
    const note = Object.assign(document.createElement("p"), { className: "field-error", id: `${name}-error`, textContent: message });
    field.after(note);
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-describedby", note.id);
    first ??= field;
  }
  first?.focus();
  return first !== null;
}

async function resultOf(taskId) {
  const answer = await (await client.request(`/api/v1/tasks/${taskId}/result`)).json();
  return answer.data;
}

/** Follow the page's main task: bar, stage, text, cancel; remembered across a reload. */
function follow(taskId, kind) {
  current?.unsubscribe();
  sessionStorage.setItem(CURRENT, JSON.stringify({ taskId, kind }));
  $("progress").hidden = false;
  $("writing").hidden = kind !== "business_plan";  // only a plan has text to show
  $("preview-title").textContent = "작성 중인 내용";
  $("preview").replaceChildren();
  $("events").replaceChildren();
  render({ status: "pending", progress: 0, currentStage: null });
  // the running task is where the founder looks: brought into view, focus on its heading
  $("progress").scrollIntoView({ block: "start" });
  $("progress-title").focus({ preventScroll: true });
  if (kind === "business_plan") $("generate").disabled = true;  // one plan at a time
  const ended = () => {
    sessionStorage.removeItem(CURRENT);
    $("generate").disabled = false;
    loadHistory().catch(() => {});
  };
  const sub = client.subscribeTask(taskId, {
    onStatus: (task) => { renderDocument($("preview"), sub.text); follows($("preview")); render(task); },
    onProgress: render,
    onPartial: (task, text) => {
      const preview = $("preview");
      const atEnd = preview.scrollTop + preview.clientHeight >= preview.scrollHeight - 24;
      renderDocument(preview, sub.text);
      if (atEnd) follows(preview);  // unless the reader scrolled up to read
    },
    onCompleted: async (task) => {
      ended();
      toast(`완료: ${KINDS[kind] ?? kind}`);
      if (kind === "business_plan") {
        $("preview-title").textContent = "완성된 계획서";
        const made = await resultOf(taskId);
        plan = { businessPlanId: made.businessPlanId, projectId: made.projectId };
        sessionStorage.setItem("taskstream.plan", JSON.stringify(plan));
        prefillSimulation();
        $("after").hidden = false;
      }
    },
    onFailed: (task) => { ended(); toast(`실패: ${reason(failure(task))}`, true); },
    onCancelled: () => { ended(); toast("취소되었습니다"); },
    onEvent: (type, task) => {
      const item = document.createElement("li");
      item.dataset.type = type;
      item.dataset.version = String(task.version);
      item.dataset.stage = task.currentStage ?? "";
      item.textContent = `${type} v${task.version} ${task.progress}%`;
      $("events").append(item);
      render(task);
    },
    onTransport: (name) => { $("transport-now").textContent = name; },
    onConnection: (up) => connection(up ? "up" : "retrying"),
    onError: (error) => lost(taskId, kind, error),
  });
  current = sub;
  $("transport-now").textContent = client.transport ?? "—";
}

/** What the reconnect button follows again: the page's task when the client gave up on it. */
let again = () => {};

/** The client gave up on the page's task: its state is unknown, not the last percent seen.
 *  The task goes on at the server; it is kept for the reconnect button and a reload. */
function lost(taskId, kind, error) {
  $("generate").disabled = false;
  if (/^(TOKEN_REVOKED|TOKEN_EXPIRED|INVALID_TOKEN|INVALID_REFRESH_TOKEN|REFRESH_TOKEN_REUSED)\b/.test(error.message)) {
    signedOut();
    return;
  }
  render({ status: "unknown", progress: Number($("bar").value), currentStage: null });
  $("stage").textContent = "· 연결이 끊겼습니다 ·";
  connection("lost");
  again = () => follow(taskId, kind);
}

/** The session ended elsewhere (logout, password reset) or cannot be renewed. */
function signedOut() {
  forget();
  $("account").hidden = false;
  for (const part of ["wizard", "who", "progress", "after", "history", "connection"]) $(part).hidden = true;
  toast("로그인이 끝났습니다. 다시 로그인해 주세요", true);
}

/** Nothing of the session is kept: its tokens, its connection, the task it followed. */
function forget() {
  client.close();
  session.forget();
  for (const key of [CURRENT, GUEST]) sessionStorage.removeItem(key);
}

$("reconnect").addEventListener("click", () => {
  connection("up");  // a failure again shows the banner again
  again();
});

/** The plan's Markdown as a document: headings without the sections' internal keys
 *  ("## [market] 시장 분석" → "시장 분석"), paragraphs, lists; text only, never HTML. */
function renderDocument(box, markdown) {
  const nodes = [];
  let list = null;
  const plain = (text) => text.replace(/\*\*(.+?)\*\*/g, "$1");
  for (const raw of markdown.split("\n")) {
    const line = raw.trim();
    const heading = /^(#{1,4})\s*(?:\[[\w-]+\]\s*)?(.*)$/.exec(line);
    const item = /^[-*]\s+(.*)$/.exec(line);
    if (!line) { list = null; continue; }
    if (heading) {
      list = null;
      nodes.push(Object.assign(document.createElement(heading[1].length <= 2 ? "h3" : "h4"), { textContent: plain(heading[2]) }));
    } else if (item) {
      if (!list) { list = document.createElement("ul"); nodes.push(list); }
      list.append(Object.assign(document.createElement("li"), { textContent: plain(item[1]) }));
    } else {
      list = null;
      nodes.push(Object.assign(document.createElement("p"), { textContent: plain(line) }));
    }
  }
  box.replaceChildren(...nodes);
}

/** Keep the end of a scrolling box in view. */
function follows(box) { box.scrollTop = box.scrollHeight; }

/** Follow a side task (evaluation, simulation, export) to its result. */
function whenDone(taskId, label) {
  $("side").hidden = false;
  $("side-label").textContent = `${label} 진행 중`;
  $("side-bar").value = 0;
  const settle = () => { $("side").hidden = true; };
  return new Promise((resolve, reject) => {
    client.subscribeTask(taskId, {
      onProgress: (task) => {
        $("side-bar").value = task.progress;
        $("side-label").textContent = [`${label} 진행 중`, stageLabel(task.currentStage)].filter(Boolean).join(" · ");
      },
      onCompleted: async () => { settle(); toast(`완료: ${label}`); resolve(await resultOf(taskId)); },
      onFailed: (task) => { settle(); reject(failure(task)); },
      onCancelled: () => { settle(); reject(new Error("취소되었습니다")); },
      onConnection: (up) => connection(up ? "up" : "retrying"),
      onError: (error) => { settle(); connection("lost"); reject(error); },
    });
  });
}

/** A row of 내 작업: kind, status, progress, when. */
function describe(task) {
  const when = new Date(task.createdAt).toLocaleString("ko-KR", { dateStyle: "short", timeStyle: "short" });
  return `${KINDS[task.kind] ?? task.kind} · ${STATUS[task.status] ?? task.status} · ${task.progress}% · ${when}`;
}

/** The running tasks 내 작업 follows, so that their rows stay current. */
let watching = { unsubscribe: () => {} };

/** The founder's recent tasks, each running one followed to its end; a running plan or demo
 *  can be followed again from its row. */
async function loadHistory() {
  const response = await client.request("/api/v1/tasks?limit=10");
  if (!response.ok) return;
  const tasks = (await response.json()).data.tasks;
  const ended = (task) => ENDED.has(task.status);
  $("history").hidden = tasks.length === 0;
  $("history-list").replaceChildren(...tasks.map((task) => {
    const row = document.createElement("li");
    row.dataset.task = task.taskId;
    row.dataset.status = task.status;
    row.append(Object.assign(document.createElement("span"), { textContent: describe(task) }));
    if (!ended(task) && (task.kind === "business_plan" || task.kind === "demo")) {
      const button = Object.assign(document.createElement("button"), { type: "button", textContent: "이어 보기" });
      button.addEventListener("click", () => follow(task.taskId, task.kind));
      row.append(button);
    }
    return row;
  }));
  watching.unsubscribe();
  const running = tasks.filter((task) => !ended(task));
  const listed = new Map(running.map((task) => [task.taskId, task]));
  watching = client.subscribeTasks(running.map((task) => task.taskId), {
    onEvent: (type, update) => {
      const row = $("history-list").querySelector(`[data-task="${update.taskId}"]`);
      if (!row) return;
      row.dataset.status = update.status;
      row.querySelector("span").textContent = describe({ ...listed.get(update.taskId), ...update });
      if (ended(update)) row.querySelector("button")?.remove();
    },
  });
}

/** The header: who is signed in, and whether their address is still to be confirmed (a
 *  guest's made-up address never is, so a guest is not asked). */
function account(user) {
  $("who-name").textContent = `${user.name} 님`;
  $("unverified").hidden = user.emailVerified || sessionStorage.getItem(GUEST) === "1";
  $("resend").dataset.email = user.email;
}

function signedIn(user) {
  $("account").hidden = true;
  $("wizard").hidden = false;
  $("who").hidden = false;
  if (user) account(user);
  else client.request("/api/v1/auth/me").then((r) => r.json()).then((answer) => {
    if (answer.success) account(answer.data);
  }).catch(() => {});
  if (plan) { prefillSimulation(); $("after").hidden = false; }
  loadHistory().catch(() => {});
  const resumed = JSON.parse(sessionStorage.getItem(CURRENT) ?? "null");
  if (resumed) follow(resumed.taskId, resumed.kind);  // a reload mid-task picks it up again
}

// --- account ---------------------------------------------------------------------------

/** Sign in or up: the session keeps the tokens, the page opens. */
async function enter(action, body) {
  const form = /** @type {HTMLFormElement} */ ($("signin"));
  clearErrors(form);
  let entered;
  try {
    entered = await api(`/api/v1/auth/${action}`, body, { signedIn: false });
  } catch (error) {
    if (!error.code) throw error;  // not a refusal: the network's
    if (!showErrors(form, error)) toast(reason(error), true);
    return;
  }
  session.save(entered.tokens);
  signedIn(entered.user);
}

/** Log in, or sign up: one form, one submit button, so Enter does what the form says. */
function mode(name) {
  $("signin").dataset.mode = name;
  $("mode-login").setAttribute("aria-pressed", String(name === "login"));
  $("mode-signup").setAttribute("aria-pressed", String(name === "signup"));
  $("enter").textContent = name === "login" ? "로그인" : "가입";
  $("password").autocomplete = name === "login" ? "current-password" : "new-password";
  clearErrors($("signin"));
}
$("mode-login").addEventListener("click", () => mode("login"));
$("mode-signup").addEventListener("click", () => { mode("signup"); $("name").focus(); });

$("signin").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.target);
  const action = form.dataset.mode;
  const body = { email: form.email.value, password: form.password.value };
  if (action === "signup") body.name = form.name.value;
  sessionStorage.removeItem(GUEST);
  return busy($("enter"), action === "signup" ? "가입하지 못했습니다" : "로그인하지 못했습니다",
              () => enter(action, body));
});

// a forgotten password: a reset link by mail (the answer is the same whether or not the
// address has an account, so the page cannot tell, and says so)
$("forgot").addEventListener("click", () => busy($("forgot"), "재설정 메일을 보내지 못했습니다", async () => {
  const form = /** @type {HTMLFormElement} */ ($("signin"));
  clearErrors(form);
  try {
    await api("/api/v1/auth/password/reset-request", { email: form.email.value }, { signedIn: false });
  } catch (error) {
    if (showErrors(form, error)) return;
    throw error;
  }
  toast(`가입된 주소라면 ${form.email.value} 앞으로 재설정 메일을 보냈습니다. 메일함을 확인해 주세요`);
}));

$("resend").addEventListener("click", () => busy($("resend"), "인증 메일을 보내지 못했습니다", async () => {
  try {
    await api("/api/v1/auth/verify-email/resend");
  } catch (error) {
    if (error.code === "ALREADY_VERIFIED") $("unverified").hidden = true;
    throw error;
  }
  toast(`${$("resend").dataset.email} 앞으로 인증 메일을 다시 보냈습니다. 메일함을 확인해 주세요`);
}));

$("logout").addEventListener("click", () => busy($("logout"), "로그아웃하지 못했습니다", async () => {
  const tokens = JSON.parse(sessionStorage.getItem("taskstream.tokens") ?? "null");
  await client.request("/api/v1/auth/logout", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ refreshToken: tokens?.refreshToken }),
  });
  forget();
  location.reload();
}));

// the wizard's answers, kept across reloads (on this browser only)
const ANSWERS = "taskstream.answers";
const kept = JSON.parse(localStorage.getItem(ANSWERS) ?? "null");
for (const [name, value] of Object.entries(kept ?? {})) {
  const field = /** @type {HTMLFormElement} */ ($("plan")).elements.namedItem(name);
  if (field && "value" in field) field.value = String(value);
}
$("plan").addEventListener("input", () => {
  localStorage.setItem(ANSWERS, JSON.stringify(Object.fromEntries(new FormData(/** @type {HTMLFormElement} */ ($("plan"))))));
});

$("guest").addEventListener("click", async () => {
  sessionStorage.setItem(GUEST, "1");
  const id = crypto.randomUUID();
  await enter("signup", { email: `guest-${id.slice(0, 8)}@example.com`, password: id, name: "게스트" });
});

// --- work ------------------------------------------------------------------------------

$("plan").addEventListener("submit", async (event) => {
  event.preventDefault();
  const element = /** @type {HTMLFormElement} */ (event.target);
  const form = new FormData(element);
  let started = null;
  await busy($("generate"), "계획서 생성을 시작하지 못했습니다", async () => {
    started = await sendForm(element, "/api/v1/business-plan/generate", Object.fromEntries(form));
  });
  if (started) { follow(started.taskId, "business_plan"); loadHistory().catch(() => {}); }
});

const demoBody = () => ({
  steps: Number(query.get("steps") ?? 30), stepSeconds: Number(query.get("stepSeconds") ?? 0.1),
  ...(query.has("failAtStep") ? { failAtStep: Number(query.get("failAtStep")) } : {}),
});

$("demo").addEventListener("click", () => busy($("demo"), "데모 작업을 시작하지 못했습니다", async () => {
  const started = await api("/api/v1/demo/tasks", demoBody());
  follow(started.taskId, "demo");
  loadHistory().catch(() => {});
}));

$("demo-many").addEventListener("click", () => busy($("demo-many"), "데모 작업을 시작하지 못했습니다", async () => {
  $("many").hidden = false;
  const ids = [];
  for (let i = 0; i < 8; i++) ids.push((await api("/api/v1/demo/tasks", demoBody())).taskId);
  $("tasks").replaceChildren(...ids.map((id, i) => {
    const row = document.createElement("li");
    row.dataset.task = id;
    row.innerHTML = `<label>작업 ${i + 1} <progress max="100" value="0"></progress></label> <span>대기</span>`;
    return row;
  }));
  const show = (task) => {
    const row = $("tasks").querySelector(`[data-task="${task.taskId}"]`);
    row.querySelector("progress").value = task.progress;
    row.querySelector("span").textContent = STATUS[task.status];
    row.dataset.status = task.status;
    row.dataset.updates = String(Number(row.dataset.updates ?? 0) + 1);
  };
  client.subscribeTasks(ids, { onEvent: (type, task) => show(task) });
}));

$("cancel").addEventListener("click", async () => {
  try { await current?.cancel(); } catch (error) { toast(error.message, true); }
});

$("evaluate").addEventListener("click", () => busy($("evaluate"), "평가하지 못했습니다", async () => {
  const started = await api("/api/v1/evaluations", { businessPlanId: plan?.businessPlanId });
  const evaluation = await whenDone(started.taskId, "평가");
  $("scores").replaceChildren(...evaluation.scores.map((score) => {
    const row = document.createElement("div");
    row.className = "score";
    row.innerHTML = `<span></span><meter min="0" max="100"></meter><strong></strong>`;
    row.querySelector("span").textContent = CRITERIA[score.criterion] ?? score.criterion;
    row.querySelector("meter").value = score.score;
    row.querySelector("strong").textContent = String(score.score);
    return row;
  }), Object.assign(document.createElement("p"), { textContent: `종합 ${evaluation.overallScore}점 · ${evaluation.overallFeedback}` }));
}));

/** An amount of won written in the founder's words: "9,900원", "1만 2천원", "1억 5천만원". */
function won(text) {
  const match = /((?:\d[\d,]*(?:\.\d+)?\s*(?:억|천만|만|천)?\s*)+)원/.exec(text ?? "");
  if (!match) return null;
  const units = { 억: 1e8, 천만: 1e7, 만: 1e4, 천: 1e3 };
  let total = 0;
  for (const [, digits, unit] of match[1].matchAll(/(\d[\d,]*(?:\.\d+)?)\s*(억|천만|만|천)?/g)) {
    total += Number(digits.replaceAll(",", "")) * (units[unit] ?? 1);
  }
  return Math.round(total);
}

/** The simulation's form, from the plan's answers where they say something. */
function prefillSimulation() {
  const answers = JSON.parse(localStorage.getItem(ANSWERS) ?? "null")
    ?? Object.fromEntries(new FormData(/** @type {HTMLFormElement} */ ($("plan"))));
  const form = /** @type {HTMLFormElement} */ ($("simulation"));
  for (const [field, answer] of [["unitPrice", answers.businessModel], ["initialCash", answers.fundingNeed]]) {
    const amount = won(answer);
    if (amount) /** @type {HTMLInputElement} */ (form.elements.namedItem(field)).value = String(amount);
  }
  amounts();
}

/** An amount exactly, as it is said: 15000 → "1만 5,000원", 250000000 → "2억 5,000만원". */
function spoken(amount) {
  const parts = [[Math.floor(amount / 1e8), "억"], [Math.floor((amount % 1e8) / 1e4), "만"], [amount % 1e4, ""]];
  return `${parts.filter(([n]) => n).map(([n, unit]) => `${n.toLocaleString("ko-KR")}${unit}`).join(" ")}원`;
}

/** Each amount of won under its field, in words, once it is past 만. */
function amounts() {
  for (const output of document.querySelectorAll("output.amount")) {
    const amount = Number(/** @type {HTMLInputElement} */ (output.previousElementSibling).value);
    output.textContent = Number.isInteger(amount) && amount >= 1e4 ? spoken(amount) : "";
  }
}
$("simulation").addEventListener("input", amounts);

$("simulation").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.target);
  const value = (name) => Number(/** @type {HTMLInputElement} */ (form.elements.namedItem(name)).value);
  const body = {
    horizonMonths: value("horizonMonths"), paths: 5000,
    revenue: { initialUnits: value("initialUnits"), unitPrice: value("unitPrice"), monthlyGrowth: value("monthlyGrowth") / 100 },
    costs: { fixedMonthly: value("fixedMonthly"), variableCostPerUnit: value("variableCostPerUnit") },
    funding: { initialCash: value("initialCash") },
    uncertainty: { monthlyGrowth: { low: 0, high: Math.max(0.1, 2 * value("monthlyGrowth") / 100) }, monthlyVolatility: 0.05 },
  };
  return busy($("simulate"), "재무 시뮬레이션을 하지 못했습니다", async () => {
    // the API names nested fields ("revenue.unitPrice"): the form's are the last part
    const started = await sendForm(form, `/api/v1/projects/${plan?.projectId}/financial/simulate`, body);
    drawChart(await whenDone(started.taskId, "재무 시뮬레이션"));
  });
});

for (const button of document.querySelectorAll("[data-export]")) {
  const format = /** @type {HTMLElement} */ (button).dataset.export;
  button.addEventListener("click", () => busy(button, `${format?.toUpperCase()} 파일을 만들지 못했습니다`, async () => {
    const started = await api(`/api/v1/projects/${plan?.projectId}/export`, { format });
    const made = await whenDone(started.taskId, `${format?.toUpperCase()} 내보내기`);
    await download(made);
  }));
}

/** 48,213 → "47 KB", 1,234,567 → "1.2 MB". */
function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
}

/** Download with progress from Content-Length, then hand the file to the browser. */
async function download(made) {
  const response = await client.request(made.downloadUrl);
  if (!response.ok) throw new Error((await response.json()).error?.message ?? `HTTP ${response.status}`);
  $("downloading").hidden = false;
  const total = Number(response.headers.get("Content-Length") ?? made.size);
  const reader = /** @type {ReadableStream<Uint8Array>} */ (response.body).getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    $("download").value = Math.round((received / total) * 100);
    $("download-text").textContent = `${size(received)} / ${size(total)}`;
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob(chunks, { type: made.contentType }));
  link.download = made.fileName;
  link.click();
  URL.revokeObjectURL(link.href);
}

/** 12,345,678 → "1,235만", 123,456,789 → "1.23억": amounts as Korean readers read them. */
function short(amount) {
  const magnitude = Math.abs(amount);
  if (magnitude >= 1e8) return `${(amount / 1e8).toLocaleString("ko-KR", { maximumFractionDigits: 2 })}억`;
  if (magnitude >= 1e4) return `${Math.round(amount / 1e4).toLocaleString("ko-KR")}만`;
  return amount.toLocaleString("ko-KR");
}

/** Round steps for an axis from low to high: about `count` of them. */
function ticks(low, high, count = 5) {
  const rough = (high - low) / count || 1;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((m) => m >= rough) ?? rough;
  const out = [];
  for (let v = Math.ceil(low / step) * step; v <= high; v += step) out.push(v);
  return out;
}

/** Month-end cash: the P10–P90 band, the median, zero; axes with units; and the figures
 *  that matter as cards: break-even, the chance of running out of cash, NPV, IRR. */
function drawChart(result) {
  const bands = result.cashBalance;
  const months = result.months;
  const values = [...bands.p10, ...bands.p90, 0];
  const low = Math.min(...values), high = Math.max(...values);
  // drawn at the figure's own width (a phone's is half a desktop's), so labels keep their size
  $("chart").hidden = false;
  const width = Math.round(Math.min(640, Math.max(320, $("chart").clientWidth)));
  const left = 78, right = width - 20, top = 14, bottom = 256;
  const x = (i) => left + (i / Math.max(1, months.length - 1)) * (right - left);
  const y = (v) => bottom - ((v - low) / (high - low || 1)) * (bottom - top);
  const points = (series) => series.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  const svg = [];
  for (const v of ticks(low, high)) {
    svg.push(`<line x1="${left}" x2="${right}" y1="${y(v)}" y2="${y(v)}" stroke="${v === 0 ? "#777" : "#e3e3e3"}"${v === 0 ? ' stroke-dasharray="4"' : ""}/>`,
             `<text data-axis="y" x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${short(v)}</text>`);
  }
  const every = months.length > 36 || width < 480 ? 12 : 6;
  for (const [i, month] of months.entries()) {
    if (month % every === 0 || i === 0) svg.push(`<text data-axis="x" x="${x(i)}" y="${bottom + 16}" text-anchor="middle">${month}</text>`);
  }
  svg.push(
    `<polygon data-band="p10-p90" fill="#2a6fdb" fill-opacity=".18" stroke="none" points="${[...points(bands.p90), ...points(bands.p10).reverse()].join(" ")}"/>`,
    `<polyline data-band="p50" fill="none" stroke="#1f3b57" stroke-width="2.5" points="${points(bands.p50).join(" ")}"/>`,
    `<line x1="${left}" x2="${left}" y1="${top}" y2="${bottom}" stroke="#777"/>`,
    `<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#777"/>`,
    `<text x="${(left + right) / 2}" y="${bottom + 34}" text-anchor="middle">개월</text>`,
    `<text x="14" y="${(top + bottom) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(top + bottom) / 2})">현금 잔고 (원)</text>`,
  );
  $("chart-svg").setAttribute("viewBox", `0 0 ${width} 300`);
  $("chart-svg").innerHTML = svg.join("");
  const median = result.median;
  const cards = [
    ["손익분기", median.breakEvenMonth ? `${median.breakEvenMonth}개월` : "기간 내 없음"],
    ["현금 소진 확률", `${(result.probabilityOutOfCash * 100).toFixed(1)}%`],
    ["NPV (중앙값)", `${short(median.npv)}원`],
    // with little or nothing invested up front, IRR runs to millions of percent: not a figure
    ["IRR (연, 중앙값)", median.irrAnnual === null ? "—"
      : median.irrAnnual > 10 ? "1,000% 이상" : `${(median.irrAnnual * 100).toFixed(1)}%`],
  ];
  $("cards").replaceChildren(...cards.map(([name, figure]) => {
    const card = document.createElement("dl");
    card.className = "card";
    card.append(Object.assign(document.createElement("dt"), { textContent: name }),
                Object.assign(document.createElement("dd"), { textContent: figure }));
    return card;
  }));
  $("cards").hidden = false;
  $("chart").hidden = false;
}

// --- transport switch ------------------------------------------------------------------

for (const radio of document.querySelectorAll("input[name=transport]")) {
  radio.addEventListener("change", () => {
    sessionStorage.setItem("taskstream.transport", /** @type {HTMLInputElement} */ (radio).value);
    query.delete("transport");
    const resumed = JSON.parse(sessionStorage.getItem(CURRENT) ?? "null");
    client.close();
    client = newClient();
    if (resumed) follow(resumed.taskId, resumed.kind);
    loadHistory().catch(() => {});
  });
}

client = newClient();
if (session.signedIn()) signedIn(null);

$("history-refresh").addEventListener("click", () => busy($("history-refresh"), "목록을 불러오지 못했습니다", loadHistory));
