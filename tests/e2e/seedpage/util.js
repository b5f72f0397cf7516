// The seed client's util.js, as far as ../shared/seed/CLIENT.md describes it: form POSTs
// read as {code,msg,data|rows}; a non-200 is ignored, a non-zero code toasts msg. The
// page also records what went wrong in window.seed, for the test to read.
window.seed = { failed: [], entries: [], cleared: 0, logged: [], avatar: "" };

function toast(msg) {
  document.getElementById("toast").textContent = msg;
}

async function post(path, form) {
  const body = new URLSearchParams();
  for (const k of Object.keys(form)) body.append(k, String(form[k]));
  let r;
  try {
    r = await fetch(path, { method: "POST", body });
  } catch (e) {
    seed.failed.push(path + " " + e);
    return {};
  }
  let j = {};
  try {
    j = await r.json();
  } catch (e) { /* not JSON */ }
  if (r.status !== 200 || j.code !== 0) {
    seed.failed.push(path + " " + body.toString() + " -> HTTP " + r.status + " " + JSON.stringify(j));
    if (r.status === 200) toast(j.msg);
  }
  return j;
}

async function upload(file) {
  const fd = new FormData();
  fd.append("file", file);
  const r = await fetch("/attach/upload", { method: "POST", body: fd });
  let j = {};
  try {
    j = await r.json();
  } catch (e) { /* not JSON */ }
  if (r.status !== 200 || j.code !== 0) {
    seed.failed.push("/attach/upload -> HTTP " + r.status + " " + JSON.stringify(j));
    return "";
  }
  return j.data;
}
