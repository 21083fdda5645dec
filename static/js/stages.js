// What a task's stage says to its reader, in Korean or English: one table for the React
// binding, the demo page and any client of the team's own.
//
//   import { stageLabel } from "/static/js/stages.js";
//   stageLabel("generating") → "작성하는 중"; stageLabel("rendering:pdf", "en") → "Rendering (pdf)"

// what each kind's stages say, in Korean and English
const STAGES = {
  starting: ["시작하는 중", "Starting"], analyzing: ["분석하는 중", "Analyzing"],
  generating: ["작성하는 중", "Writing"], formatting: ["정리하는 중", "Formatting"],
  evaluating: ["평가하는 중", "Evaluating"], retrying: ["다시 시도하기 전 대기 중", "Waiting to retry"],
  collecting: ["자료를 모으는 중", "Collecting"], saving: ["파일로 저장하는 중", "Saving"],
  storing: ["파일을 보관하는 중", "Storing"], simulating: ["시뮬레이션하는 중", "Simulating"],
  summarizing: ["결과를 요약하는 중", "Summarizing"], composing: ["메일을 쓰는 중", "Composing the mail"],
  sending: ["메일을 보내는 중", "Sending the mail"], rendering: ["문서를 만드는 중", "Rendering"],
};

/**
 * The stage in the reader's language (`rendering:<part>` names the part).
 * @param {string|null} stage @param {"ko"|"en"} [language]
 * @returns {ReturnType<typeof import("./stages.js").stageLabel>}  (checked: stages.d.ts)
 */
export function stageLabel(stage, language = "ko") {
  if (!stage) return "";
  const [name, part] = stage.split(":");
  const words = STAGES[/** @type {keyof typeof STAGES} */ (name)];
  const label = words ? words[language === "ko" ? 0 : 1] : name;
  return part ? `${label} (${part})` : label;
}
