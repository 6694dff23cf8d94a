// Who may use the web page: the token from the query (once, traded for a cookie), the
// cookie or a Bearer header for reads; only the header for changes.

import { describe, expect, it } from "vitest";
import { checkAccess, cookie, COOKIE_NAME, loopbackOnly, newToken, tokenCookie } from "./access.js";

const token = newToken();
const facts = (method: string, given: { path?: string; query?: string; cookie?: string; authorization?: string } = {}) => ({
  method,
  path: given.path ?? "/",
  queryToken: given.query ?? null,
  cookieHeader: given.cookie,
  authorizationHeader: given.authorization,
});

describe("checkAccess", () => {
  it("refuses a request without the token, or with another one, with 401", () => {
    expect(checkAccess(token, facts("GET"))).toMatchObject({ allowed: false, status: 401 });
    expect(checkAccess(token, facts("GET", { query: newToken() }))).toMatchObject({ allowed: false, status: 401 });
    expect(checkAccess(token, facts("GET", { query: token.slice(1) }))).toMatchObject({ allowed: false, status: 401 });
    expect(checkAccess(token, facts("GET", { cookie: `${COOKIE_NAME}=${newToken()}` }))).toMatchObject({ allowed: false, status: 401 });
    expect(checkAccess(token, facts("GET", { authorization: `Bearer ${newToken()}` }))).toMatchObject({ allowed: false, status: 401 });
  });

  it("lets reads in with the query token (the page then sets the cookie, the API does not), the cookie or the header", () => {
    expect(checkAccess(token, facts("GET", { query: token }))).toEqual({ allowed: true, setCookie: true });
    expect(checkAccess(token, facts("GET", { path: "/api/status", query: token }))).toEqual({ allowed: true, setCookie: false });
    expect(checkAccess(token, facts("GET", { cookie: `other=1; ${COOKIE_NAME}=${token}` }))).toEqual({ allowed: true, setCookie: false });
    expect(checkAccess(token, facts("GET", { authorization: `Bearer ${token}` }))).toEqual({ allowed: true, setCookie: false });
  });

  it("lets changes in with the header only: the cookie or the query goes with another site's form too", () => {
    expect(checkAccess(token, facts("POST", { authorization: `Bearer ${token}` }))).toEqual({ allowed: true, setCookie: false });
    expect(checkAccess(token, facts("POST", { cookie: `${COOKIE_NAME}=${token}` }))).toMatchObject({ allowed: false, status: 403 });
    expect(checkAccess(token, facts("POST", { query: token }))).toMatchObject({ allowed: false, status: 403 });
    expect(checkAccess(token, facts("DELETE", { cookie: `${COOKIE_NAME}=${token}` }))).toMatchObject({ allowed: false, status: 403 });
    expect(checkAccess(token, facts("POST", { authorization: `Bearer ${newToken()}` }))).toMatchObject({ allowed: false, status: 401 });
  });
});

describe("the token and its cookie", () => {
  it("is 32 random bytes in base64url, new each time", () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newToken()).not.toBe(token);
  });

  it("sets a cookie scripts and other sites do not get, and reads it back among others", () => {
    expect(tokenCookie(token)).toBe(`${COOKIE_NAME}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000`);
    expect(cookie(`a=1; ${COOKIE_NAME}=${token}; b=2`, COOKIE_NAME)).toBe(token);
    expect(cookie(`x${COOKIE_NAME}=nope`, COOKIE_NAME)).toBeUndefined();
    expect(cookie(undefined, COOKIE_NAME)).toBeUndefined();
  });
});

describe("loopbackOnly", () => {
  it("is true for loopback addresses only: serve warns about every other bind", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"]) expect(loopbackOnly(host), host).toBe(true);
    for (const host of ["0.0.0.0", "::", "192.0.2.1", "10.0.0.1", "fe80::1", "2001:db8::1", "::ffff:192.0.2.1", "localhost"]) expect(loopbackOnly(host), host).toBe(false);
  });
});
