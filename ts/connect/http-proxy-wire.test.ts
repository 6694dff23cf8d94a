import { describe, expect, it } from "vitest";
import { basicAuthMatches, errorResponse, headEnd, type HttpProxyError, parseProxyRequest, statusForError } from "./http-proxy-wire.js";

const statusOf = (head: string) => {
  try {
    parseProxyRequest(head);
  } catch (error) {
    return (error as HttpProxyError).status;
  }
  return undefined;
};

describe("the HTTP proxy's request head", () => {
  it("reads CONNECT's authority, a name or an IP", () => {
    expect(parseProxyRequest("CONNECT files.test:443 HTTP/1.1\r\nHost: files.test:443\r\n\r\n")).toEqual({ method: "CONNECT", host: "files.test", port: 443 });
    expect(parseProxyRequest("CONNECT [fd00::1]:22 HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\n\r\n")).toEqual({ method: "CONNECT", host: "fd00::1", port: 22, authorization: "Basic dTpw" });
    expect(parseProxyRequest("CONNECT under_score.test:443 HTTP/1.1\r\n\r\n")).toEqual({ method: "CONNECT", host: "under_score.test", port: 443 }); // as tunnel.connect takes it
  });

  it("rewrites an absolute-URI request to origin-form, dropping the proxy's and hop-by-hop fields", () => {
    const request = parseProxyRequest("GET http://files.test:8000/a?b=1 HTTP/1.1\r\nHost: files.test:8000\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic x\r\nAccept: */*\r\n\r\n");
    expect(request).toMatchObject({ method: "GET", host: "files.test", port: 8000, authorization: "Basic x" });
    expect(request.forwardHead).toBe("GET /a?b=1 HTTP/1.1\r\nHost: files.test:8000\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    expect(parseProxyRequest("GET http://10.0.0.1/ HTTP/1.0\r\n\r\n")).toMatchObject({ host: "10.0.0.1", port: 80 });
  });

  it("reads an absolute URI's host as WHATWG URL and curl do: short and hex IPv4 forms are addresses, not names", () => {
    expect(parseProxyRequest("GET http://1.2.3/ HTTP/1.1\r\n\r\n")).toMatchObject({ host: "1.2.0.3", port: 80, forwardHead: "GET / HTTP/1.1\r\nHost: 1.2.0.3\r\nConnection: close\r\n\r\n" });
    expect(parseProxyRequest("GET http://0x7f.1:8080/x HTTP/1.1\r\n\r\n")).toMatchObject({ host: "127.0.0.1", port: 8080, forwardHead: "GET /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n" });
  });

  it("answers malformed heads with 400", () => {
    for (const head of ["GET /relative HTTP/1.1\r\n\r\n", "CONNECT files.test HTTP/1.1\r\n\r\n", "CONNECT a:99999 HTTP/1.1\r\n\r\n", "GET http://x/ HTTP/2\r\n\r\n", "G@T http://x/ HTTP/1.1\r\n\r\n", "GET http://x/ HTTP/1.1\r\nBad Field: 1\r\n\r\n", "GET http://x/ HTTP/1.1\r\n folded\r\n\r\n", "GET https://x/ HTTP/1.1\r\n\r\n", "\r\n\r\n"]) {
      expect(statusOf(head)).toBe(400);
    }
  });

  it("refuses with 400 a forwarded request whose body length could be read two ways (RFC 9112 6.3), and forwards one framing", () => {
    const request = (fields: string) => `POST http://x/ HTTP/1.1\r\n${fields}\r\n`;
    for (const fields of [
      "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
      "Content-Length: 5\r\nContent-Length: 6\r\n",
      "Content-Length: 5, 6\r\n",
      "Content-Length: +5\r\n",
      "Transfer-Encoding: chunked, gzip\r\n",
      "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
    ]) {
      expect(statusOf(request(fields))).toBe(400);
    }
    for (const fields of ["Content-Length: 5\r\n", "Content-Length: 5\r\nContent-Length: 5\r\n", "Transfer-Encoding: gzip, chunked\r\n", ""]) {
      expect(parseProxyRequest(request(fields)).forwardHead).toContain(fields);
    }
  });

  it("finds the end of the head, checks Basic logins and maps failures to 502 or 504", () => {
    expect(headEnd(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\nbody"))).toBe(18);
    expect(headEnd(new TextEncoder().encode("GET / HTTP/1.1\r\n"))).toBe(-1);
    expect(basicAuthMatches(`Basic ${Buffer.from("u:p:w").toString("base64")}`, { user: "u", pass: "p:w" })).toBe(true);
    expect(basicAuthMatches(`Basic ${Buffer.from("u:x").toString("base64")}`, { user: "u", pass: "p:w" })).toBe(false);
    expect(basicAuthMatches(undefined, { user: "u", pass: "p" })).toBe(false);
    expect([statusForError("ECONNREFUSED"), statusForError("ENOTFOUND"), statusForError("ETIMEDOUT")]).toEqual([502, 502, 504]);
    expect(errorResponse(407, "login")).toMatch(/^HTTP\/1\.1 407 Proxy Authentication Required\r\n/);
  });
});
