// The reset link's page: a new password for the token in the link, said in Korean.
const form = document.getElementById("reset");
const result = document.getElementById("result");
const token = new URLSearchParams(location.search).get("token") ?? "";

// what the API's refusal means here
const REASONS = {
  INVALID_OR_EXPIRED_TOKEN: "링크가 만료되었거나 이미 쓰였습니다. 로그인 화면에서 재설정 메일을 다시 받아 주세요",
  RATE_LIMITED: "요청이 너무 잦습니다. 잠시 뒤 다시 해 주세요",
};

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const password = form.password.value;
  if (password.length < 8) {
    result.textContent = "비밀번호는 8자 이상이어야 합니다";
    form.password.setAttribute("aria-invalid", "true");
    form.password.focus();
    return;
  }
  form.password.removeAttribute("aria-invalid");
  let body;
  try {
    const response = await fetch("/api/v1/auth/password/reset", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token, password }),
    });
    body = await response.json();
  } catch {
    result.textContent = "서버에 연결할 수 없습니다. 인터넷 연결을 확인해 주세요";
    return;
  }
  result.textContent = body.success
    ? "비밀번호가 바뀌었습니다. 새 비밀번호로 로그인해 주세요."
    : `바꾸지 못했습니다: ${REASONS[body.error.code] ?? body.error.message}`;
  document.getElementById("again").hidden = !body.success && body.error.code !== "INVALID_OR_EXPIRED_TOKEN";
  form.hidden = body.success;
});
