// The verification link's page: the address in the link confirmed, said in Korean.
const result = document.getElementById("result");
const REASONS = {
  INVALID_OR_EXPIRED_TOKEN: "링크가 만료되었거나 이미 쓰였습니다",
  ALREADY_VERIFIED: "이미 확인된 주소입니다",
  RATE_LIMITED: "요청이 너무 잦습니다. 잠시 뒤 다시 해 주세요",
};
const token = new URLSearchParams(location.search).get("token") ?? "";
const response = await fetch("/api/v1/auth/verify-email", {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ token }),
});
const body = await response.json();
result.textContent = body.success
  ? `${body.data.email} 주소가 확인되었습니다.`
  : `확인하지 못했습니다: ${REASONS[body.error.code] ?? body.error.message}`;
result.dataset.outcome = body.success ? "verified" : body.error.code;
