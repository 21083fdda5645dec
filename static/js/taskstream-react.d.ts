// Types of the React bindings (taskstream-react.js), which is checked against them.

import type { Context, ReactElement, ReactNode } from "react";
import type { Task, TaskStatus, TaskstreamClient, Transport } from "./taskstream.js";

export const TaskstreamContext: Context<TaskstreamClient | null>;

export function TaskstreamProvider(props: {
  client: TaskstreamClient;
  children?: ReactNode;
}): ReactElement;

export interface UseTaskOptions {
  /** the client to use instead of the provider's */
  client?: TaskstreamClient;
  /** ms until the hook stops following and reports TIMEOUT (the task goes on) */
  timeout?: number;
  /** times the hook follows again after the client gave up (default 3) */
  maxRetries?: number;
  /** ms before the first of those, doubling (default 1000) */
  retryDelay?: number;
}

export interface TaskState {
  taskId: string | null;
  task: Task | null;
  status: TaskStatus | null;
  progress: number;
  currentStage: string | null;
  estimatedRemaining: number | null;
  text: string;
  error: Error | null;
  transport: Transport | null;
  /** following again after the client gave up */
  retrying: boolean;
  ended: boolean;
  cancel: () => Promise<Task>;
}

export function useTask(taskId: string | null | undefined, options?: UseTaskOptions): TaskState;

export { stageLabel } from "./stages.js";

export function TaskProgress(props: {
  taskId: string | null | undefined;
  language?: "ko" | "en";
  options?: UseTaskOptions;
  onEnd?: (task: Task) => void;
  className?: string;
}): ReactElement | null;
