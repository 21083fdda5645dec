// React bindings for Taskstream's browser client: a hook and a progress component, as a
// plain ES module (no JSX, no build step). It imports "react" by name: a bundler resolves
// it, a page without one maps it with an import map.
//
//   import { TaskstreamProvider, useTask, TaskProgress } from "/static/js/taskstream-react.js";
//   <TaskstreamProvider client={client}> … </TaskstreamProvider>   (one client per app)
//   const { status, progress, currentStage, estimatedRemaining, text, error, cancel } = useTask(taskId);
//   <TaskProgress taskId={taskId} language="ko" />
//
// Every hook of a provider shares its client's one connection; a hook that unmounts gives
// its subscription back (the connection closes with the last one). The options follow the
// client plan's usePolling: `timeout` (ms until the hook stops following and reports
// TIMEOUT; the task itself goes on), `maxRetries` and `retryDelay` (when the client gives
// up — every transport failed — the hook follows again after `retryDelay` ms, doubling,
// `maxRetries` times, before it reports the error).

import { createContext, createElement as h, useCallback, useContext, useEffect, useState } from "react";
import { stageLabel } from "./stages.js";
import { ENDED } from "./taskstream.js";

export { stageLabel };

// Checked against the declarations (taskstream-react.d.ts), as taskstream.js is against its.
/** @typedef {import("./taskstream.js").Task} Task */
/** @typedef {import("./taskstream.js").TaskstreamClient} TaskstreamClient */
/** @typedef {typeof import("./taskstream-react.js")} Declared */

// errors that another try cannot mend
const FINAL = /^(TOKEN_REVOKED|TASK_NOT_FOUND)/;

/** @type {Declared["TaskstreamContext"]} */
export const TaskstreamContext = createContext(/** @type {TaskstreamClient|null} */ (null));

/**
 * @param {Parameters<Declared["TaskstreamProvider"]>[0]} props
 * @returns {ReturnType<Declared["TaskstreamProvider"]>}
 */
export function TaskstreamProvider({ client, children }) {
  return h(TaskstreamContext.Provider, { value: client }, children);
}

/** @param {string|null|undefined} taskId */
function initial(taskId) {
  return {
    taskId: taskId ?? null,
    task: /** @type {Task|null} */ (null),
    status: /** @type {Task["status"]|null} */ (null),
    progress: 0,
    currentStage: /** @type {string|null} */ (null),
    estimatedRemaining: /** @type {number|null} */ (null),
    text: "",
    error: /** @type {Error|null} */ (null),
    transport: /** @type {import("./taskstream.js").Transport|null} */ (null),
    retrying: false,
  };
}

/**
 * Follow a task: its state, re-rendered at every event; `cancel()` asks the server.
 * @param {string|null|undefined} taskId  nothing is followed while it is empty
 * @param {import("./taskstream-react.js").UseTaskOptions} [options]
 * @returns {import("./taskstream-react.js").TaskState}
 */
export function useTask(taskId, options = {}) {
  const provided = useContext(TaskstreamContext);
  const client = options.client ?? provided;
  const { timeout, maxRetries = 3, retryDelay = 1000 } = options;
  const [state, setState] = useState(() => initial(taskId));

  useEffect(() => {
    setState(initial(taskId));
    if (!taskId) return undefined;
    if (!client) {
      setState({ ...initial(taskId), error: new Error("NO_CLIENT: wrap the app in <TaskstreamProvider client={…}>") });
      return undefined;
    }
    let gone = false;
    let retries = 0;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    let again;
    /** @type {import("./taskstream.js").Subscription|null} */
    let sub = null;
    /** @param {Partial<ReturnType<typeof initial>>} change */
    const update = (change) => { if (!gone) setState((current) => ({ ...current, ...change })); };
    const follow = () => {
      const mine = client.subscribeTask(taskId, {
        onEvent: (_type, task) => update({
          task, status: task.status, progress: task.progress, currentStage: task.currentStage,
          estimatedRemaining: task.estimatedRemaining, text: mine.text, error: null, retrying: false,
        }),
        onTransport: (transport) => update({ transport }),
        onTimeout: () => update({ error: new Error("TIMEOUT: the task did not end in time"), retrying: false }),
        onError: (error) => {
          if (gone) return;
          if (retries < maxRetries && !FINAL.test(error.message)) {
            retries += 1;
            update({ retrying: true });
            again = setTimeout(follow, retryDelay * 2 ** (retries - 1));
          } else {
            update({ error, retrying: false });
          }
        },
      }, timeout ? { timeout } : {});
      sub = mine;
    };
    follow();
    return () => { gone = true; clearTimeout(again); sub?.unsubscribe(); };
  }, [client, taskId, timeout, maxRetries, retryDelay]);

  const cancel = useCallback(async () => {
    if (!client || !taskId) throw new Error("no task to cancel");
    return client.cancelTask(taskId);
  }, [client, taskId]);

  return { ...state, ended: state.status !== null && ENDED.has(state.status), cancel };
}

// --- the component ------------------------------------------------------------------------

const WORDS = {
  ko: {
    progress: "진행률", cancel: "취소", cancelling: "취소하는 중…", left: (/** @type {string} */ t) => `약 ${t} 남음`,
    seconds: (/** @type {number} */ n) => `${n}초`, minutes: (/** @type {number} */ n) => `${n}분`, retrying: "연결을 다시 시도하는 중…",
    status: { pending: "대기 중", processing: "진행 중", completed: "완료", failed: "실패", cancelled: "취소됨" },
    failed: "작업이 실패했습니다", timeout: "시간 안에 끝나지 않았습니다",
  },
  en: {
    progress: "Progress", cancel: "Cancel", cancelling: "Cancelling…", left: (/** @type {string} */ t) => `about ${t} left`,
    seconds: (/** @type {number} */ n) => `${n} s`, minutes: (/** @type {number} */ n) => `${n} min`, retrying: "Reconnecting…",
    status: { pending: "Waiting", processing: "In progress", completed: "Done", failed: "Failed", cancelled: "Cancelled" },
    failed: "The task failed", timeout: "It did not end in time",
  },
};

/** @param {number|null} seconds @param {typeof WORDS.ko} words */
function timeLeft(seconds, words) {
  if (seconds === null || seconds === undefined || seconds <= 0) return "";
  const shown = seconds < 60 ? words.seconds(Math.ceil(seconds)) : words.minutes(Math.ceil(seconds / 60));
  return words.left(shown);
}

/**
 * A task's progress: bar, stage, time left, cancel; announced politely to screen readers
 * (the stage and the end, not every percent).
 * @param {Parameters<Declared["TaskProgress"]>[0]} props
 * @returns {ReturnType<Declared["TaskProgress"]>}
 */
export function TaskProgress({ taskId, language = "ko", options, onEnd, className }) {
  const task = useTask(taskId, options);
  const words = WORDS[language] ?? WORDS.ko;
  const [cancelling, setCancelling] = useState(false);
  useEffect(() => { if (task.ended && task.task) onEnd?.(task.task); }, [task.ended]);
  if (!taskId) return null;
  const stage = stageLabel(task.currentStage, language);
  const status = task.status ? words.status[task.status] : "";
  const problem = task.error
    ? (task.error.message.startsWith("TIMEOUT") ? words.timeout : task.error.message)
    : task.status === "failed" ? (task.task?.errorMessage || words.failed) : "";
  const onCancel = async () => {
    setCancelling(true);
    try { await task.cancel(); } finally { setCancelling(false); }
  };
  return h("div", { className: ["ts-progress", className].filter(Boolean).join(" "), "data-status": task.status ?? "" },
    h("div", {
      role: "progressbar", className: "ts-progress-track", "aria-label": words.progress,
      "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": task.progress,
      "aria-valuetext": [`${task.progress}%`, stage || status].filter(Boolean).join(" · "),
    }, h("div", { className: "ts-progress-bar", style: { width: `${task.progress}%` } })),
    h("p", { className: "ts-progress-line", "aria-live": "polite" },
      h("span", { className: "ts-progress-status" }, task.ended ? status : stage || status),
      " ",
      h("span", { className: "ts-progress-left" }, task.ended ? "" : timeLeft(task.estimatedRemaining, words))),
    task.retrying ? h("p", { className: "ts-progress-retrying", role: "status" }, words.retrying) : null,
    problem ? h("p", { className: "ts-progress-error", role: "alert" }, problem) : null,
    task.ended ? null : h("button", {
      type: "button", className: "ts-progress-cancel", onClick: onCancel, disabled: cancelling || !task.status,
    }, cancelling ? words.cancelling : words.cancel),
  );
}
