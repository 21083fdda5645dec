const spec = await (await fetch("/openapi.json")).json();
const main = document.getElementById("operations");
main.replaceChildren();
for (const [path, methods] of Object.entries(spec.paths)) {
  for (const [method, op] of Object.entries(methods)) {
    const item = document.createElement("details");
    const summary = document.createElement("summary");
    summary.innerHTML = `<span class="method"></span> <code></code> — <span></span>`;
    summary.children[0].textContent = method;
    summary.children[1].textContent = path;
    summary.children[2].textContent = op.summary + (op.security?.length ? " 🔒" : "");
    const body = op.requestBody?.content["application/json"].schema.$ref?.split("/").pop();
    const pre = document.createElement("pre");
    pre.textContent = JSON.stringify({
      body: body ? spec.components.schemas[body] : undefined,
      responses: Object.fromEntries(Object.entries(op.responses).map(([s, r]) => [s, r.description])),
    }, null, 2);
    item.append(summary, pre);
    main.append(item);
  }
}
