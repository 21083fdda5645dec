/** The stage in the reader's language (`rendering:<part>` names the part). */
export function stageLabel(stage: string | null, language?: "ko" | "en"): string;
