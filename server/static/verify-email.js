const result = document.getElementById("result");
const token = new URLSearchParams(location.search).get("token") ?? "";
const response = await fetch("/api/v1/auth/verify-email", {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ token }),
});
const body = await response.json();
result.textContent = body.success
  ? `${body.data.email} 주소가 확인되었습니다.`
  : `확인하지 못했습니다: ${body.error.message}`;
result.dataset.outcome = body.success ? "verified" : body.error.code;
