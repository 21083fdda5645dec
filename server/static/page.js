// The demo page: a founder's business plan, written live, then evaluated, simulated and
// exported. Everything it follows goes through the client library.
import { TaskstreamClient, storedSession } from "/static/js/taskstream.js";

const $ = (id) => /** @type {HTMLElement & Record<string, any>} */ (document.getElementById(id));
const session = storedSession();
const query = new URLSearchParams(location.search);
const CURRENT = "taskstream.current";

const KINDS = { business_plan: "사업계획서", demo: "데모 작업" };
const STATUS = { pending: "대기", processing: "진행 중", completed: "완료", failed: "실패", cancelled: "취소됨" };
const STAGES = {
  starting: ["시작", "starting"], analyzing: ["분석 중", "analyzing"],
  generating: ["작성 중", "writing"], formatting: ["정리 중", "formatting"],
  retrying: ["재시도 대기", "waiting to retry"], collecting: ["자료 모으는 중", "collecting"],
  saving: ["저장 중", "saving"], simulating: ["시뮬레이션 중", "simulating"],
  summarizing: ["요약 중", "summarizing"], composing: ["메일 작성 중", "composing"],
  sending: ["메일 보내는 중", "sending"],
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
  });
}

function toast(text, bad = false) {
  const note = document.createElement("p");
  note.className = bad ? "toast bad" : "toast";
  note.textContent = text;
  $("toasts").append(note);
  setTimeout(() => note.remove(), 6000);
}

function stageLabel(stage) {
  if (!stage) return "";
  if (stage.startsWith("rendering:")) return `· 문서 만드는 중: ${stage.slice(10)} (rendering) ·`;
  const [ko, en] = STAGES[stage] ?? [stage, stage];
  return `· ${ko} (${en}) ·`;
}

function render(task) {
  $("bar").value = task.progress ?? 0;
  $("percent").textContent = String(task.progress ?? 0);
  $("status").textContent = STATUS[task.status] ?? task.status;
  $("status").dataset.status = task.status;
  $("stage").textContent = stageLabel(task.currentStage);
  $("eta").textContent = task.estimatedRemaining ? `· 약 ${Math.ceil(task.estimatedRemaining)}초 남음` : "";
  $("cancel").disabled = ["completed", "failed", "cancelled"].includes(task.status);
}

async function api(path, body) {
  const response = await client.request(path, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? {}),
  });
  const answer = await response.json();
  if (!answer.success) throw new Error(answer.error.message);
  return answer.data;
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
  $("preview").textContent = "";
  $("events").replaceChildren();
  render({ status: "pending", progress: 0, currentStage: null });
  const sub = client.subscribeTask(taskId, {
    onStatus: (task) => { $("preview").textContent = sub.text; render(task); },
    onProgress: render,
    onPartial: (task, text) => { $("preview").textContent += text; },
    onCompleted: async (task) => {
      sessionStorage.removeItem(CURRENT);
      toast(`완료: ${KINDS[kind] ?? kind}`);
      if (kind === "business_plan") {
        const made = await resultOf(taskId);
        plan = { businessPlanId: made.businessPlanId, projectId: made.projectId };
        sessionStorage.setItem("taskstream.plan", JSON.stringify(plan));
        $("after").hidden = false;
      }
    },
    onFailed: (task) => { sessionStorage.removeItem(CURRENT); toast(`실패: ${task.errorMessage}`, true); },
    onCancelled: () => { sessionStorage.removeItem(CURRENT); toast("취소되었습니다"); },
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
    onError: (error) => toast(`연결 오류: ${error.message}`, true),
  });
  current = sub;
  $("transport-now").textContent = client.transport ?? "—";
}

/** Follow a side task (evaluation, simulation, export) to its result. */
function whenDone(taskId, label) {
  return new Promise((resolve, reject) => {
    client.subscribeTask(taskId, {
      onCompleted: async () => { toast(`완료: ${label}`); resolve(await resultOf(taskId)); },
      onFailed: (task) => { toast(`실패: ${label}: ${task.errorMessage}`, true); reject(new Error(task.errorMessage)); },
      onCancelled: () => reject(new Error("cancelled")),
      onError: reject,
    });
  });
}

function signedIn(user) {
  $("account").hidden = true;
  $("wizard").hidden = false;
  $("who").hidden = false;
  $("who").textContent = user ? `${user.name} (${user.email})` : "";
  if (plan) $("after").hidden = false;
  const resumed = JSON.parse(sessionStorage.getItem(CURRENT) ?? "null");
  if (resumed) follow(resumed.taskId, resumed.kind);  // a reload mid-task picks it up again
}

// --- account ---------------------------------------------------------------------------

/** Sign in or up: the session keeps the tokens, the page opens. */
async function enter(action, body) {
  const response = await fetch(`/api/v1/auth/${action}`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!answer.success) { toast(answer.error.message, true); return; }
  session.save(answer.data.tokens);
  signedIn(answer.data.user);
}

$("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.target);
  const action = /** @type {HTMLButtonElement} */ (/** @type {SubmitEvent} */ (event).submitter).value;
  const body = { email: form.email.value, password: form.password.value };
  if (action === "signup") body.name = form.name.value || "사용자";
  await enter(action, body);
});

$("guest").addEventListener("click", async () => {
  const id = crypto.randomUUID();
  await enter("signup", { email: `guest-${id.slice(0, 8)}@example.com`, password: id, name: "게스트" });
});

// --- work ------------------------------------------------------------------------------

$("plan").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(/** @type {HTMLFormElement} */ (event.target));
  try {
    const started = await api("/api/v1/business-plan/generate", Object.fromEntries(form));
    follow(started.taskId, "business_plan");
  } catch (error) { toast(error.message, true); }
});

const demoBody = () => ({
  steps: Number(query.get("steps") ?? 30), stepSeconds: Number(query.get("stepSeconds") ?? 0.1),
});

$("demo").addEventListener("click", async () => {
  const started = await api("/api/v1/demo/tasks", demoBody());
  follow(started.taskId, "demo");
});

$("demo-many").addEventListener("click", async () => {
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
});

$("cancel").addEventListener("click", async () => {
  try { await current?.cancel(); } catch (error) { toast(error.message, true); }
});

$("evaluate").addEventListener("click", async () => {
  const started = await api("/api/v1/evaluations", { businessPlanId: plan?.businessPlanId });
  const evaluation = await whenDone(started.taskId, "평가");
  $("scores").replaceChildren(...evaluation.scores.map((score) => {
    const row = document.createElement("div");
    row.className = "score";
    row.innerHTML = `<span></span><meter min="0" max="100"></meter><strong></strong>`;
    row.querySelector("span").textContent = score.criterion;
    row.querySelector("meter").value = score.score;
    row.querySelector("strong").textContent = String(score.score);
    return row;
  }), Object.assign(document.createElement("p"), { textContent: `종합 ${evaluation.overallScore}점 · ${evaluation.overallFeedback}` }));
});

$("simulate").addEventListener("click", async () => {
  const started = await api(`/api/v1/projects/${plan?.projectId}/financial/simulate`, {
    horizonMonths: 36, paths: 5000,
    revenue: { initialUnits: 200, unitPrice: 9900, monthlyGrowth: 0.05 },
    costs: { fixedMonthly: 2500000, variableCostPerUnit: 3000 },
    funding: { initialCash: 30000000 },
    uncertainty: { monthlyGrowth: { low: 0, high: 0.1 }, monthlyVolatility: 0.05 },
  });
  drawChart(await whenDone(started.taskId, "재무 시뮬레이션"));
});

for (const button of document.querySelectorAll("[data-export]")) {
  button.addEventListener("click", async () => {
    const format = /** @type {HTMLElement} */ (button).dataset.export;
    const started = await api(`/api/v1/projects/${plan?.projectId}/export`, { format });
    const made = await whenDone(started.taskId, `${format} 내보내기`);
    await download(made);
  });
}

/** Download with progress from Content-Length, then hand the file to the browser. */
async function download(made) {
  const response = await client.request(made.downloadUrl);
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
    $("download-text").textContent = `${received.toLocaleString()} / ${total.toLocaleString()} B`;
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob(chunks, { type: made.contentType }));
  link.download = made.fileName;
  link.click();
  URL.revokeObjectURL(link.href);
}

/** Monthly cash flow, p10/p50/p90, as SVG polylines. */
function drawChart(result) {
  const bands = result.cashFlow;
  const values = [...bands.p10, ...bands.p90, 0];
  const low = Math.min(...values), high = Math.max(...values);
  const x = (i) => 40 + (i / (result.months.length - 1)) * 550;
  const y = (v) => 240 - ((v - low) / (high - low || 1)) * 220;
  const line = (series, color, name) =>
    `<polyline data-band="${name}" fill="none" stroke="${color}" stroke-width="2" points="${series.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ")}"/>`;
  $("chart-svg").innerHTML =
    `<line x1="40" x2="590" y1="${y(0)}" y2="${y(0)}" stroke="#999" stroke-dasharray="4"/>` +
    line(bands.p10, "#c0392b", "p10") + line(bands.p50, "#1f3b57", "p50") + line(bands.p90, "#27ae60", "p90") +
    `<text x="44" y="14" font-size="12">P90 초록 · P50 남색 · P10 빨강 · 현금 소진 확률 ${(result.probabilityOutOfCash * 100).toFixed(1)}%</text>`;
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
  });
}

client = newClient();
if (session.signedIn()) signedIn(null);
