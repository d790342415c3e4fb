// The JSON API, with the access token (from ?token= in the page's address) on every request.

const params = new URLSearchParams(location.search);
const TOKEN = params.get("token") || sessionStorage.getItem("afb-token") || "";
if (TOKEN) sessionStorage.setItem("afb-token", TOKEN);

export function url(path) {
  if (!TOKEN) return path;
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN);
}

function headers(extra = {}) {
  return TOKEN ? { ...extra, Authorization: "Bearer " + TOKEN } : extra;
}

async function check(res) {
  if (res.ok) return res;
  let message = `${res.status} ${res.statusText}`;
  try { message = (await res.json()).error || message; } catch (e) { /* not JSON */ }
  const err = new Error(message);
  err.status = res.status;
  throw err;
}

export async function get(path) {
  const res = await check(await fetch(path, { headers: headers() }));
  return res.status === 204 ? null : res.json();
}

export async function send(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await check(await fetch(path, init));
  return res.status === 204 ? null : res.json();
}

export async function putBytes(path, bytes, type) {
  const res = await check(await fetch(path, { method: "PUT", headers: headers({ "Content-Type": type }), body: bytes }));
  return res.json();
}

export async function getBytes(path) {
  const res = await check(await fetch(path, { headers: headers(), cache: "no-store" }));
  return { bytes: new Uint8Array(await res.arrayBuffer()), source: res.headers.get("X-Mask-Source") };
}

export async function download(path) {
  const res = await check(await fetch(path, { headers: headers() }));
  const name = /filename="?([^";]+)"?/.exec(res.headers.get("Content-Disposition") || "")?.[1] || "export";
  const incomplete = Number(res.headers.get("X-Incomplete") || 0);
  const blob = await res.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  return { name, incomplete };
}

// Upload a file as the raw request body, reporting progress (0..1).
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    if (TOKEN) xhr.setRequestHeader("Authorization", "Bearer " + TOKEN);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new Error(body?.error || `upload failed (${xhr.status})`));
    };
    xhr.onerror = () => reject(new Error("upload failed: the server cannot be reached"));
    xhr.send(file);
  });
}

export function events(path, handlers) {
  const source = new EventSource(url(path));
  for (const [name, fn] of Object.entries(handlers)) {
    source.addEventListener(name, (e) => fn(JSON.parse(e.data)));
  }
  return source;
}
