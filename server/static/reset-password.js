const form = document.getElementById("reset");
const result = document.getElementById("result");
const token = new URLSearchParams(location.search).get("token") ?? "";
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("/api/v1/auth/password/reset", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token, password: form.password.value }),
  });
  const body = await response.json();
  result.textContent = body.success
    ? "비밀번호가 바뀌었습니다. 새 비밀번호로 로그인해 주세요."
    : `바꾸지 못했습니다: ${body.error.message}`;
});
