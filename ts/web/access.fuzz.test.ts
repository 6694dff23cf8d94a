// Property tests for the web page's token check: whatever Cookie and Authorization headers a
// browser or a stranger sends, the answer is allowed only with the exact token (a change
// only with it in the Authorization header), never an exception; a cookie we set reads back
// among others.
// Seeded and deterministic: a failure prints the seed and case to replay (test/support/fuzz.ts).

import { describe, it } from "vitest";
import { check, fuzz, mutateText } from "../../test/support/fuzz.js";
import { checkAccess, COOKIE_NAME, cookie, newToken, tokenCookie } from "./access.js";

const ALPHABET = "=; ,\t\"Bearer abcXYZ019-_é";

describe("the web page's token check, against any headers", () => {
  it("allowed only with the exact token; a change only with it in the Authorization header", () => {
    const token = newToken();
    fuzz("checkAccess", { seed: 0xacc, cases: 4000 }, (rng) => {
      const method = rng.pick(["GET", "HEAD", "POST", "PUT", "DELETE", "get"]);
      const cookieHeader = rng.chance(0.5) ? mutateText(rng, `a=b; ${COOKIE_NAME}=${token}; c=d`, ALPHABET) : undefined;
      const authorizationHeader = rng.chance(0.5) ? mutateText(rng, `Bearer ${token}`, ALPHABET) : undefined;
      const queryToken = rng.chance(0.3) ? mutateText(rng, token, ALPHABET) : null;
      const request = { method, path: rng.pick(["/", "/api/status"]), queryToken, cookieHeader, authorizationHeader };
      const input = JSON.stringify(request);
      const access = checkAccess(token, request);
      const bearer = /^Bearer (\S+)$/i.exec(authorizationHeader ?? "")?.[1] === token;
      // RFC 6265 5.4, read here on its own: "name=value" pairs split by ";", the first of our name counts.
      const pairs = (cookieHeader ?? "").split(";").filter((pair) => pair.indexOf("=") > 0);
      const ours = pairs.map((pair) => [pair.slice(0, pair.indexOf("=")).trim(), pair.slice(pair.indexOf("=") + 1).trim()]).find(([name]) => name === COOKIE_NAME);
      const fromCookie = ours?.[1] === token;
      if (method !== "GET" && method !== "HEAD") check(access.allowed === bearer, `a ${method} allowed: ${access.allowed}`, input);
      else check(access.allowed === (bearer || fromCookie || queryToken === token), `a ${method} allowed: ${access.allowed}`, input);
      if (!access.allowed) check(access.status === 401 || access.status === 403, `status ${access.status}`, input);
    });
  });

  it("round trip: the cookie we set reads back from a Cookie header among others, whatever they hold", () => {
    fuzz("cookie", { seed: 0xc00c, cases: 3000 }, (rng) => {
      const token = newToken();
      const set = tokenCookie(token).split(";")[0]!;
      const others = Array.from({ length: rng.int(4) }, () => `${rng.text(rng.range(1, 8), "abcxyz_")}=${rng.text(rng.int(12), "abc019=-_%")}`);
      others.splice(rng.int(others.length + 1), 0, set);
      const header = others.join(rng.pick(["; ", ";"]));
      check(cookie(header, COOKIE_NAME) === token, `read ${cookie(header, COOKIE_NAME)}`, header);
      const junk = mutateText(rng, header, ALPHABET);
      const value = cookie(junk, COOKIE_NAME);
      check(value === undefined || typeof value === "string", "a value or none", junk);
    });
  });
});
