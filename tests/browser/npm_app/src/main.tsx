// A plan followed as the client team's app would: the client and the hook from the npm
// package, Taskstream on another origin. What to follow comes in the URL's fragment:
// {"api": "<Taskstream's URL>", "tokens": {...}, "taskId": "..."}.
import { createRoot } from "react-dom/client";
import { storedSession, TaskstreamClient } from "taskstream-client";
import { TaskProgress, TaskstreamProvider, useTask } from "taskstream-client/react";

interface Given {
  api: string;
  tokens: { accessToken: string; refreshToken: string };
  taskId: string;
}

const given: Given = JSON.parse(decodeURIComponent(location.hash.slice(1)));
const session = storedSession(given.api);
session.save(given.tokens);
const client = new TaskstreamClient({ baseUrl: given.api, auth: session });
const lengths: number[] = []; // the text's length at each render: it grows as it is written
Object.assign(window, { lengths });

function Plan({ taskId }: { taskId: string }) {
  const { status, progress, text, cancel } = useTask(taskId);
  lengths.push(text.length);
  return (
    <main>
      <p id="status" data-status={status ?? ""}>{status}</p>
      <progress id="bar" max={100} value={progress} />
      <TaskProgress taskId={taskId} language="ko" />
      <button type="button" onClick={() => void cancel()}>생성 중단</button>
      <pre id="text">{text}</pre>
    </main>
  );
}

createRoot(document.getElementById("root")!).render(
  <TaskstreamProvider client={client}>
    <Plan taskId={given.taskId} />
  </TaskstreamProvider>,
);
