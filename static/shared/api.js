// The Spinpresso API client: JSON over fetch with same-origin cookies.
//
//   import { api, ApiError } from "/shared/api.js";
//   const order = await api.post(`/api/orders/${id}/claim`);
//
// Every failure throws an `ApiError` with the API's `code` and `message` and the HTTP
// `status` (0 and code `network` when the request never got an answer).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function request(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (method !== "GET") {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body ?? {});
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, "network", String(error?.message ?? error));
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(
      response.status,
      data?.error?.code ?? `http_${response.status}`,
      data?.error?.message ?? response.statusText,
    );
  }
  return data;
}

export const api = {
  get: (path) => request("GET", path),
  post: (path, body) => request("POST", path, body),
  put: (path, body) => request("PUT", path, body),
  delete: (path) => request("DELETE", path),
};

/** The shop this page is about: `?shop=` or `main`. */
export function shopFromUrl() {
  const shop = new URLSearchParams(location.search).get("shop");
  return shop && /^[a-z0-9-]{1,32}$/.test(shop) ? shop : "main";
}

/** `/api/shops/<shop>` + rest, with the shop id escaped. */
export function shopPath(shop, rest = "") {
  return `/api/shops/${encodeURIComponent(shop)}${rest}`;
}

const STAFF_KEY = "spinpresso.staff";

/**
 * Signs in with a PIN for `role` (its PIN or a higher role's works), limited to `shop` when given;
 * remembers `{role, staffId, shop, expiresAt}` (the token itself stays in the HttpOnly cookie).
 */
export async function staffLogin(pin, { role, shop } = {}) {
  const body = { pin };
  if (role) body.role = role;
  if (shop) body.shop = shop;
  const result = await api.post("/api/staff/login", body);
  const who = { role: result.role, staffId: result.staffId, shop: result.shop ?? null, expiresAt: result.expiresAt };
  localStorage.setItem(STAFF_KEY, JSON.stringify(who));
  return who;
}

/**
 * Signs out: the server revokes the token and clears the cookie, then this browser forgets it.
 * Throws (and forgets nothing) when the server could not be reached, so the caller can say so.
 */
export async function staffLogout() {
  await api.post("/api/staff/logout");
  forgetStaff();
}

/** The staff member signed in on this browser, if their sign-in has not expired. */
export function rememberedStaff() {
  try {
    const who = JSON.parse(localStorage.getItem(STAFF_KEY) ?? "null");
    if (who && Date.parse(who.expiresAt) > Date.now()) return who;
  } catch {
    /* nothing remembered */
  }
  return null;
}

export function forgetStaff() {
  localStorage.removeItem(STAFF_KEY);
}

const ROLE_RANK = { display: 1, barista: 2, admin: 3 };

/** Whether `role` may act as `needed` (admin ⊃ barista ⊃ display). */
export function roleCovers(role, needed) {
  return (ROLE_RANK[role] ?? 0) >= ROLE_RANK[needed];
}

/** True for the errors that mean "sign in (again)". */
export function isAuthError(error) {
  return error instanceof ApiError && (error.status === 401 || error.status === 403);
}
