// What the client team writes, typed: `tsc --noEmit` (scripts/check) checks the declarations
// (static/js/*.d.ts) against it. Each @ts-expect-error is a mistake they must catch.
import {
  storedSession,
  TaskstreamClient,
  type Task,
  type Transport,
} from "../../../static/js/taskstream.js";
import {
  stageLabel,
  TaskProgress,
  TaskstreamProvider,
  useTask,
} from "../../../static/js/taskstream-react.js";

const session = storedSession();
session.save({ accessToken: "a", refreshToken: "r" });
const client = new TaskstreamClient({ auth: session, transport: "auto", maxRetries: 3, retryDelay: 500 });

const sub = client.subscribeTask("task-id", {
  onProgress: (task: Task) => console.log(task.progress, task.currentStage),
  onPartial: (task, text: string) => console.log(task.version, text.length),
  onEvent: (type, task) => console.log(type, task.status),
  onTransport: (transport: Transport) => console.log(transport),
  onError: (error: Error) => console.log(error.message),
}, { timeout: 60_000 });
const text: string = sub.text;
const last: Task | null = sub.task;
sub.cancel().then((task) => console.log(task.status === "cancelled", text, last));
const many = client.subscribeTasks(["a", "b"], { onCompleted: (task) => console.log(task.resultUrl) });
many.unsubscribe();

// @ts-expect-error: a task id is a string
client.subscribeTask(42, {});
// @ts-expect-error: no such transport
new TaskstreamClient({ auth: session, transport: "carrier-pigeon" });
// @ts-expect-error: onProgress gets a Task, not a number
client.subscribeTask("x", { onProgress: (progress: number) => progress });

function Plan({ taskId }: { taskId: string }) {
  const { status, progress, currentStage, estimatedRemaining, text, error, cancel, ended } = useTask(
    taskId,
    { timeout: 120_000, maxRetries: 3, retryDelay: 1000 },
  );
  // @ts-expect-error: the timeout is in milliseconds, a number
  useTask(taskId, { timeout: "two minutes" });
  const left: number | null = estimatedRemaining;
  return (
    <section>
      <p>{status ?? "…"} {progress}% {stageLabel(currentStage, "ko")} {left}</p>
      <pre>{text}</pre>
      {error ? <p role="alert">{error.message}</p> : null}
      {ended ? null : <button onClick={() => cancel().then((task: Task) => task.status)}>취소</button>}
      <TaskProgress taskId={taskId} language="en" onEnd={(task) => console.log(task.finishedAt)} />
    </section>
  );
}

export function App() {
  return (
    <TaskstreamProvider client={client}>
      <Plan taskId="task-id" />
      {/* @ts-expect-error: language is "ko" or "en" */}
      <TaskProgress taskId="task-id" language="fr" />
    </TaskstreamProvider>
  );
}
