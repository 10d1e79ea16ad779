// The public API as a phone calls it: bearer tokens kept for this tab (sessionStorage), a
// refresh on 401 token_expired, every error as the API's {code, message, field_errors}.

const TOKENS = "m.tokens";

export class ApiError extends Error {
  constructor(status, body) {
    super(body.message || "网络异常，请稍后再试");
    this.status = status;
    this.code = body.code || "network_error";
    this.fieldErrors = body.field_errors || {};
  }
}

export function tokens() {
  try {
    return JSON.parse(sessionStorage.getItem(TOKENS));
  } catch {
    return null;
  }
}

export function keepTokens(pair) {
  sessionStorage.setItem(TOKENS, JSON.stringify(pair));
}

export function forgetTokens() {
  sessionStorage.removeItem(TOKENS);
}

// Called when the session is over (an expired refresh, a disabled account): the app shows
// the sign-in screen, keeping the drafts of what was typed.
let onSignedOut = () => {};
export function whenSignedOut(callback) {
  onSignedOut = callback;
}

async function parse(response) {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    return { code: "bad_answer", message: "服务器返回了无法识别的内容，请稍后再试" };
  }
}

async function send(method, path, body, bearer) {
  const headers = {};
  let payload;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  try {
    return await fetch(path, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, { code: "network_error", message: "网络连接失败，请检查网络后重试" });
  }
}

let refreshing = null;
async function refresh() {
  const current = tokens();
  if (!current) return false;
  refreshing ||= send("POST", "/auth/refresh", { refresh_token: current.refresh_token })
    .then(async (response) => {
      if (!response.ok) return false;
      keepTokens(await parse(response));
      return true;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

function signedOut(status, body) {
  forgetTokens();
  onSignedOut();
  return new ApiError(status, body);
}

// A signed-in call; `raw` answers the Response itself (a photo to show).
export async function api(method, path, body, { raw = false } = {}) {
  const session = tokens();
  let response = await send(method, path, body, session?.access_token);
  if (response.status === 401 && session) {
    const error = await parse(response);
    if (error.code !== "token_expired" || !(await refresh())) throw signedOut(401, error);
    response = await send(method, path, body, tokens().access_token);
    if (response.status === 401) throw signedOut(401, await parse(response));
  }
  if (!response.ok) throw new ApiError(response.status, await parse(response));
  return raw ? response : parse(response);
}

// A call made before signing in (sign-up, login).
export async function publicApi(method, path, body) {
  const response = await send(method, path, body);
  const answer = await parse(response);
  if (!response.ok) throw new ApiError(response.status, answer);
  return answer;
}

// A multipart upload with progress (fetch reports none): onProgress(0..1).
export function upload(path, form, onProgress) {
  const attempt = () =>
    new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", path);
      xhr.setRequestHeader("Authorization", `Bearer ${tokens()?.access_token}`);
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      };
      xhr.onload = () => {
        let body = {};
        try {
          body = JSON.parse(xhr.responseText || "{}");
        } catch {
          body = {};
        }
        resolve({ status: xhr.status, body });
      };
      xhr.onerror = () =>
        reject(new ApiError(0, { message: "网络连接中断，照片没有传完，请重试" }));
      xhr.send(form);
    });
  return attempt().then(async ({ status, body }) => {
    if (status === 401 && body.code === "token_expired" && (await refresh())) {
      ({ status, body } = await attempt());
    }
    if (status === 401) throw signedOut(status, body);
    if (status < 200 || status >= 300) throw new ApiError(status, body);
    onProgress(1);
    return body;
  });
}
