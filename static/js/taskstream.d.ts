// Types of Taskstream's browser client (taskstream.js), for TypeScript code that imports it.
// The types are declared here once: taskstream.js imports them in its JSDoc and is checked
// against them (checkJs, strict: tests/browser/js/tsconfig.client.json), and a typed
// example uses them (tests/browser/js/example.tsx); both in scripts/check.

export type TaskStatus = "pending" | "processing" | "completed" | "failed" | "cancelled";
/** The statuses a task ends in. */
export const ENDED: ReadonlySet<TaskStatus>;
export type Transport = "sse" | "ws" | "poll";
export type EventType = "status" | "progress" | "partial" | "completed" | "failed" | "cancelled";

/** A task as every event carries it (the status endpoint's `data`). */
export interface Task {
  taskId: string;
  kind: string;
  status: TaskStatus;
  /** 0–100 */
  progress: number;
  currentStage: string | null;
  /** seconds */
  estimatedRemaining: number | null;
  errorCode: string | null;
  errorMessage: string | null;
  attempt: number;
  maxAttempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  estimatedTime: number | null;
  /** +1 per event */
  version: number;
  textLength: number | null;
  resultUrl: string | null;
}

export interface Handlers {
  /** the full state (first, and after a resync) */
  onStatus?: (task: Task) => void;
  onProgress?: (task: Task) => void;
  /** text added to the task's text */
  onPartial?: (task: Task, text: string) => void;
  onCompleted?: (task: Task) => void;
  onFailed?: (task: Task) => void;
  onCancelled?: (task: Task) => void;
  /** every event, whatever its type */
  onEvent?: (type: EventType, task: Task) => void;
  /** which transport carries it now */
  onTransport?: (transport: Transport) => void;
  /** the connection was lost (false: trying again) or is back (true) */
  onConnection?: (up: boolean) => void;
  /** `timeout` passed before the task ended */
  onTimeout?: () => void;
  /** gave up (no transport left), the task is unknown, or the session ended */
  onError?: (error: Error) => void;
}

export interface SubscribeOptions {
  /** ms until `onTimeout` and the end of the subscription */
  timeout?: number;
}

export interface Auth {
  /** the current access token */
  accessToken: () => string | Promise<string>;
  /** a new access token, when the current one has expired */
  refresh: () => Promise<string>;
}

export interface ClientOptions {
  baseUrl?: string;
  auth: Auth;
  transport?: "auto" | Transport;
  /** ms between status polls (default 2000) */
  pollInterval?: number;
  /** failed connections in a row before moving on / giving up (default 5) */
  maxRetries?: number;
  /** first reconnect delay in ms; doubles, with jitter, to 30 s (default 1000) */
  retryDelay?: number;
}

/** One task's listener: its handlers, and what it has seen. */
export class Subscription {
  readonly client: TaskstreamClient;
  readonly taskId: string;
  handlers: Handlers;
  /** the last event id of this task */
  lastEventId: string | null;
  /** the task as last heard of (null until the first event) */
  task: Task | null;
  /** the text written so far */
  text: string;
  /** true once unsubscribed, ended or given up */
  closed: boolean;
  /** the transport now in use */
  readonly transport: Transport | null;
  /** Stop listening (the task goes on). */
  unsubscribe(): void;
  /** Ask the server to cancel the task. */
  cancel(): Promise<Task>;
}

export class TaskstreamClient {
  constructor(options: ClientOptions);
  readonly baseUrl: string;
  /** the transport now in use, null while nothing is followed */
  readonly transport: Transport | null;
  /** Follow one task until it ends (or `unsubscribe()`). */
  subscribeTask(taskId: string, handlers: Handlers, options?: SubscribeOptions): Subscription;
  /** Follow several tasks on the same connection; handlers get the task in every call. */
  subscribeTasks(
    taskIds: string[],
    handlers: Handlers,
    options?: SubscribeOptions,
  ): { subscriptions: Subscription[]; unsubscribe: () => void };
  /** Ask the server to cancel a task (its subscriptions then hear `cancelled`). */
  cancelTask(taskId: string): Promise<Task>;
  /** An API request with the access token (refreshed once on a 401). */
  request(path: string, init?: RequestInit): Promise<Response>;
  /** Close the connection and every subscription. */
  close(): void;
}

export interface Tokens {
  accessToken: string;
  refreshToken: string;
}

/** The smallest `auth` for a client: tokens kept in sessionStorage, refreshed on demand. */
export function storedSession(baseUrl?: string): Auth & {
  save(tokens: Tokens): void;
  signedIn(): boolean;
  forget(): void;
};
