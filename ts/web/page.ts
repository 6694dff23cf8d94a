/// <reference lib="dom" />
// (Deno type-checks with its own libs, without the DOM that tsconfig.json adds: pageScript needs it.)
// The web page: one HTML document with its style and script inline (nothing to fetch
// from elsewhere, so it works offline). The script is `pageScript` below, written in
// TypeScript for the browser and put into the page as its compiled source text: it must
// not use anything from outside its own body.

/** The page for a visitor who has the token (the script needs it for POST requests; see access.ts). */
export function pageHtml(token: string, nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="wg-token" content="${token}">
<title>wg-netstack</title>
<link rel="icon" href="data:,">
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
<header>
  <h1>wg-netstack <span class="muted">gateway</span></h1>
  <span id="connection" class="pill">connecting…</span>
</header>
<main>
<section id="status" class="cards"></section>

<section>
  <div class="bar">
    <h2>Peers</h2>
    <form id="add-peer" class="inline">
      <input id="new-peer-name" name="name" placeholder="new peer name" pattern="[A-Za-z0-9][A-Za-z0-9_.\\-]{0,31}" required>
      <button type="submit">Add peer</button>
    </form>
  </div>
  <p id="peer-error" class="error" hidden></p>
  <table id="peers">
    <thead><tr><th>Name</th><th>Tunnel addresses</th><th>Endpoint</th><th>Handshake</th><th class="num">Up</th><th class="num">Down</th><th>Rate (1 min)</th><th></th></tr></thead>
    <tbody></tbody>
  </table>
  <div id="peer-detail" hidden>
    <div class="bar"><h3 id="detail-title"></h3><button id="detail-close" type="button" class="plain">close</button></div>
    <div class="detail">
      <img id="detail-qr" alt="QR code of the config">
      <div>
        <pre id="detail-config"></pre>
        <a id="detail-download" class="button">Download .conf</a>
      </div>
    </div>
  </div>
</section>

<section>
  <div class="bar">
    <h2>Flows</h2>
    <div class="inline">
      <select id="filter-peer"><option value="">every peer</option></select>
      <select id="filter-protocol"><option value="">tcp and udp</option><option>tcp</option><option>udp</option></select>
      <input id="filter-text" type="search" placeholder="filter: address, name, end">
    </div>
  </div>
  <table id="flows">
    <thead><tr><th>Start</th><th>Peer</th><th>Proto</th><th>Client → destination</th><th>Name</th><th class="num">Up</th><th class="num">Down</th><th class="num">Duration</th><th>End</th></tr></thead>
    <tbody></tbody>
  </table>
  <p id="flows-note" class="muted"></p>
</section>

<section>
  <div class="bar">
    <h2>Capture</h2>
    <div class="inline">
      <select id="capture-peer"><option value="">every peer</option></select>
      <button id="capture-start" type="button">Start capture</button>
      <button id="capture-stop" type="button" disabled>Stop</button>
      <a id="capture-download" class="button" href="/api/capture.pcap" hidden>Download .pcap</a>
    </div>
  </div>
  <p id="capture-state" class="muted">Decrypted packets, as Wireshark and tshark open them.</p>
</section>
</main>
<script nonce="${nonce}">(${pageScript.toString()})();</script>
</body>
</html>
`;
}

const STYLE = `
:root { --fg: #1d2330; --muted: #6b7385; --line: #e3e6ec; --bg: #f6f7f9; --card: #fff; --accent: #2f6fde; --up: #d9822b; --down: #2f6fde; --bad: #c23b3b; --good: #2e8b57; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; justify-content: space-between; padding: 10px 24px; background: #1d2330; color: #fff; }
header h1 { font-size: 18px; margin: 0; font-weight: 600; }
header .muted { color: #aab2c3; font-weight: 400; }
main { padding: 16px 24px 40px; max-width: 1400px; margin: 0 auto; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin-bottom: 16px; }
section.cards { display: flex; flex-wrap: wrap; gap: 12px; background: none; border: 0; padding: 0; }
.card { flex: 1 1 auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 15px; font-weight: 600; white-space: nowrap; }
.card.mono .value { font: 600 12.5px ui-monospace, Menlo, Consolas, monospace; line-height: 22px; }
h2 { font-size: 16px; margin: 0; } h3 { font-size: 15px; margin: 0; }
.bar { display: flex; align-items: center; justify-content: space-between; gap: 12px; flex-wrap: wrap; margin-bottom: 8px; }
.inline { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
table { width: 100%; border-collapse: collapse; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px; border-bottom: 1px solid var(--line); padding: 6px 8px; }
td { border-bottom: 1px solid var(--line); padding: 5px 8px; vertical-align: middle; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.mono, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }
tr.open td { background: #f2f7ff; }
tr.selected td { background: #eef3fc; }
.muted { color: var(--muted); }
.error { color: var(--bad); }
.pill { border-radius: 999px; padding: 2px 10px; font-size: 12px; background: #3a4256; }
.pill.live { background: var(--good); }
.end { border-radius: 4px; padding: 1px 6px; font-size: 12px; background: #eceff4; }
.end.open { background: #dbe7fb; color: #1f4fa8; }
.end.bad { background: #fbe3e3; color: var(--bad); }
.end.good { background: #e2f3e9; color: var(--good); }
.online { color: var(--good); } .offline { color: var(--muted); }
button, .button { font: inherit; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 6px; padding: 4px 12px; cursor: pointer; text-decoration: none; display: inline-block; }
button:disabled { opacity: .45; cursor: default; }
button.plain { background: none; color: var(--accent); }
button.danger { background: none; border-color: var(--bad); color: var(--bad); padding: 2px 8px; }
button.small { padding: 2px 8px; }
input, select { font: inherit; padding: 4px 8px; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
#peer-detail { border-top: 1px solid var(--line); margin-top: 12px; padding-top: 12px; }
.detail { display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap; }
.detail img { width: 260px; height: 260px; image-rendering: pixelated; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
pre { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; margin: 0 0 10px; white-space: pre-wrap; }
svg.spark { display: block; background: #f6f8fb; border-radius: 3px; }
.legend { font-size: 11px; color: var(--muted); }
.legend .u { color: var(--up); } .legend .d { color: var(--down); }
`;

/** The page's script, run in the browser as `(pageScript)()`. Plain DOM code. */
export function pageScript(): void {
  type Endpoint = { host: string; port: number };
  type Flow = {
    id: number;
    start: number;
    peer: string;
    protocol: "tcp" | "udp";
    src: Endpoint;
    dst: Endpoint;
    name?: string;
    up?: number;
    down?: number;
    durationMs?: number;
    end?: string;
    error?: string;
  };
  type Peer = {
    name: string;
    publicKey: string;
    address: string[];
    endpoint: string | null;
    sinceHandshakeMs: number | null;
    up: number;
    down: number;
    rate: { up: number[]; down: number[] };
  };
  type Status = {
    publicKey: string;
    udp: string;
    endpoint: string;
    uptimeMs: number;
    peers: number;
    connections: number;
    flows: { flows: number; open: number; up: number; down: number };
  };
  type Capture = { running: boolean; peer: string | null; packets: number; bytes: number; note: string | null; ready: boolean };

  /** Finished flows drawn at most; the filters apply first. */
  const SHOWN_FLOWS = 300;
  /** A session older than this (WireGuard's reject-after-time, 180 s) is no longer up. */
  const SESSION_MS = 180_000;
  const BAD_ENDS = new Set(["client-reset", "upstream-reset", "upstream-error", "refused", "denied", "unreachable"]);

  const token = document.querySelector<HTMLMetaElement>('meta[name="wg-token"]')!.content;
  const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
  const element = (tag: string, props: Record<string, string> = {}, ...children: (Node | string)[]) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) node.setAttribute(key, value);
    node.append(...children);
    return node;
  };

  const bytes = (n: number) => {
    if (n < 1000) return `${n} B`;
    const units = ["kB", "MB", "GB", "TB"];
    let value = n / 1000;
    let unit = 0;
    while (value >= 999.95 && unit < units.length - 1) {
      value /= 1000;
      unit++;
    }
    return `${value.toFixed(1)} ${units[unit]}`;
  };
  const rate = (bytesPerSecond: number) => `${bytes(Math.round(bytesPerSecond * 8)).replace("B", "bit")}/s`;
  const duration = (ms: number) => {
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
    const minutes = Math.floor(ms / 60_000);
    if (minutes < 60) return `${minutes}m${String(Math.floor((ms % 60_000) / 1000)).padStart(2, "0")}s`;
    return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
  };
  const clock = (ms: number) => new Date(ms).toLocaleTimeString([], { hour12: false });
  const endpoint = (e: Endpoint) => (e.host.includes(":") ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`);

  const request = async (method: "GET" | "POST", path: string, body?: unknown) => {
    const response = await fetch(path, {
      method,
      headers: method === "POST" ? { authorization: `Bearer ${token}`, "content-type": "application/json" } : {},
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const value = response.headers.get("content-type")?.startsWith("application/json") ? await response.json() : await response.text();
    if (!response.ok) throw new Error(value?.error ?? `${response.status}`);
    return value;
  };

  // ---- status ----
  const renderStatus = (status: Status) => {
    const cards: [string, string, string?][] = [
      ["Public key", status.publicKey, "mono"],
      ["Listening (UDP)", status.udp],
      ["Endpoint in configs", status.endpoint],
      ["Uptime", duration(status.uptimeMs)],
      ["Peers", String(status.peers)],
      ["Flows open / done", `${status.flows.open} / ${status.flows.flows}`],
      ["Flow bytes ↑ / ↓", `${bytes(status.flows.up)} / ${bytes(status.flows.down)}`],
    ];
    byId("status").replaceChildren(
      ...cards.map(([label, value, kind]) => element("div", { class: `card ${kind ?? ""}` }, element("div", { class: "label" }, label), element("div", { class: "value", title: value }, value))),
    );
  };

  // ---- peers ----
  let peers: Peer[] = [];
  let selected: string | null = null;
  const rows = new Map<string, { row: HTMLElement; cells: HTMLElement[] }>();

  const sparkline = (history: Peer["rate"]) => {
    const width = 140;
    const height = 30;
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", String(height));
    const top = Math.max(1, ...history.up, ...history.down);
    const line = (values: number[], color: string) => {
      if (values.length === 0) return;
      const step = width / 59;
      const x0 = width - (values.length - 1) * step;
      const points = values.map((v, i) => `${(x0 + i * step).toFixed(1)},${(height - 2 - (v / top) * (height - 4)).toFixed(1)}`);
      const path = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      path.setAttribute("points", points.join(" "));
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", color);
      path.setAttribute("stroke-width", "1.5");
      svg.append(path);
    };
    line(history.down, "#2f6fde");
    line(history.up, "#d9822b");
    const now = (values: number[]) => values.at(-1) ?? 0;
    const legend = element("div", { class: "legend" }, element("span", { class: "u" }, `↑ ${rate(now(history.up))}`), "  ", element("span", { class: "d" }, `↓ ${rate(now(history.down))}`));
    return element("div", {}, svg, legend);
  };

  const renderPeers = () => {
    const tbody = byId("peers").querySelector("tbody")!;
    const names = new Set(peers.map((peer) => peer.name));
    for (const [name, entry] of rows) {
      if (names.has(name)) continue;
      entry.row.remove();
      rows.delete(name);
    }
    for (const peer of peers) {
      let entry = rows.get(peer.name);
      if (!entry) {
        const cells = Array.from({ length: 7 }, (_, i) => element("td", { class: i === 4 || i === 5 ? "num" : i === 1 ? "mono" : "" }));
        const show = element("button", { type: "button", class: "small plain", "data-action": "show" }, "config & QR");
        const remove = element("button", { type: "button", class: "danger", "data-action": "remove" }, "remove");
        show.addEventListener("click", () => select(selected === peer.name ? null : peer.name));
        remove.addEventListener("click", () => void removePeer(peer.name));
        const row = element("tr", { "data-peer": peer.name }, ...cells, element("td", {}, show, " ", remove));
        entry = { row, cells };
        rows.set(peer.name, entry);
      }
      tbody.append(entry.row); // keeps the server's order (by name)
      const [name, address, where, handshake, up, down, graph] = entry.cells;
      const online = peer.sinceHandshakeMs !== null && peer.sinceHandshakeMs < SESSION_MS;
      name!.replaceChildren(element("span", { class: online ? "online" : "offline", title: online ? "session up" : "no session" }, "● "), element("strong", {}, peer.name));
      address!.textContent = peer.address.join("\n").replace(/\/(32|128)$/gm, "");
      address!.style.whiteSpace = "pre";
      where!.textContent = peer.endpoint ?? "—";
      handshake!.textContent = peer.sinceHandshakeMs === null ? "never" : `${duration(peer.sinceHandshakeMs)} ago`;
      up!.textContent = bytes(peer.up);
      down!.textContent = bytes(peer.down);
      graph!.replaceChildren(sparkline(peer.rate));
      entry.row.classList.toggle("selected", peer.name === selected);
    }
    if (selected !== null && !names.has(selected)) select(null);
    for (const id of ["filter-peer", "capture-peer"]) {
      const box = byId<HTMLSelectElement>(id);
      const want = ["", ...peers.map((peer) => peer.name)];
      const have = Array.from(box.options, (option) => option.value);
      if (want.join("\n") === have.join("\n")) continue;
      const value = box.value;
      box.replaceChildren(box.options[0]!, ...want.slice(1).map((name) => element("option", { value: name }, name)));
      box.value = want.includes(value) ? value : "";
    }
  };

  const select = (name: string | null) => {
    selected = name;
    const detail = byId("peer-detail");
    detail.hidden = name === null;
    for (const [peerName, entry] of rows) entry.row.classList.toggle("selected", peerName === name);
    if (name === null) return;
    const path = `/api/peers/${encodeURIComponent(name)}`;
    byId("detail-title").textContent = `${name}: scan with the WireGuard app, or import the file`;
    byId<HTMLImageElement>("detail-qr").src = `${path}/qr.svg?t=${Date.now()}`;
    const download = byId<HTMLAnchorElement>("detail-download");
    download.href = `${path}/config?download`;
    download.download = `${name}.conf`;
    byId("detail-config").textContent = "";
    request("GET", `${path}/config`).then(
      (text: string) => (byId("detail-config").textContent = text),
      (error: Error) => (byId("detail-config").textContent = `cannot load: ${error.message}`),
    );
  };

  const showPeerError = (message: string) => {
    const box = byId("peer-error");
    box.textContent = message;
    box.hidden = message === "";
  };

  byId("add-peer").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = byId<HTMLInputElement>("new-peer-name");
    request("POST", "/api/peers", { name: input.value.trim() }).then(
      async (created: { name: string }) => {
        input.value = "";
        showPeerError("");
        peers = await request("GET", "/api/peers");
        renderPeers();
        select(created.name);
      },
      (error: Error) => showPeerError(`add peer: ${error.message}`),
    );
  });

  const removePeer = async (name: string) => {
    if (!confirm(`Remove peer ${name}? Its client is cut off at once, and its config stops working.`)) return;
    try {
      await request("POST", `/api/peers/${encodeURIComponent(name)}/remove`);
      showPeerError("");
      peers = await request("GET", "/api/peers");
      renderPeers();
    } catch (error) {
      showPeerError(`remove ${name}: ${(error as Error).message}`);
    }
  };
  byId("detail-close").addEventListener("click", () => select(null));

  // ---- flows ----
  const flows = new Map<number, Flow>();
  let flowsDrawn = false;
  const endClass = (end: string) => (BAD_ENDS.has(end) ? "bad" : end === "closed" || end === "answered" ? "good" : "");
  const flowMatches = (flow: Flow) => {
    const peer = byId<HTMLSelectElement>("filter-peer").value;
    const protocol = byId<HTMLSelectElement>("filter-protocol").value;
    const text = byId<HTMLInputElement>("filter-text").value.trim().toLowerCase();
    if (peer && flow.peer !== peer) return false;
    if (protocol && flow.protocol !== protocol) return false;
    if (!text) return true;
    return [endpoint(flow.src), endpoint(flow.dst), flow.name ?? "", flow.end ?? "open", flow.error ?? "", flow.peer].some((field) => field.toLowerCase().includes(text));
  };
  const renderFlows = () => {
    flowsDrawn = false;
    const all = [...flows.values()];
    const open = all.filter((flow) => flow.end === undefined && flowMatches(flow));
    const done = all.filter((flow) => flow.end !== undefined && flowMatches(flow)).sort((a, b) => b.id - a.id);
    const shown = [...open.sort((a, b) => b.id - a.id), ...done.slice(0, SHOWN_FLOWS)];
    const now = Date.now();
    byId("flows")
      .querySelector("tbody")!
      .replaceChildren(
        ...shown.map((flow) => {
          const ended = flow.end !== undefined;
          const end = element("span", { class: `end ${ended ? endClass(flow.end!) : "open"}`, title: flow.error ?? "" }, flow.end ?? "open");
          return element(
            "tr",
            { class: ended ? "" : "open", "data-flow": String(flow.id) },
            element("td", { class: "mono" }, clock(flow.start)),
            element("td", {}, flow.peer),
            element("td", {}, flow.protocol),
            element("td", { class: "mono" }, `${endpoint(flow.src)} → ${endpoint(flow.dst)}`),
            element("td", {}, flow.name ?? ""),
            element("td", { class: "num" }, flow.up === undefined ? "" : bytes(flow.up)),
            element("td", { class: "num" }, flow.down === undefined ? "" : bytes(flow.down)),
            element("td", { class: "num" }, duration(ended ? (flow.durationMs ?? 0) : now - flow.start)),
            element("td", {}, end),
          );
        }),
      );
    const hidden = done.length - Math.min(done.length, SHOWN_FLOWS);
    byId("flows-note").textContent = flows.size === 0 ? "No flows yet: they appear here as clients open them." : hidden > 0 ? `${hidden} older flows not shown.` : "";
  };
  const drawFlowsSoon = () => {
    if (flowsDrawn) return;
    flowsDrawn = true;
    requestAnimationFrame(renderFlows);
  };
  for (const id of ["filter-peer", "filter-protocol", "filter-text"]) byId(id).addEventListener("input", renderFlows);

  // ---- capture ----
  const renderCapture = (state: Capture) => {
    byId<HTMLButtonElement>("capture-start").disabled = state.running;
    byId<HTMLButtonElement>("capture-stop").disabled = !state.running;
    byId("capture-download").hidden = state.running || !state.ready;
    const who = state.peer ?? "every peer";
    const note = state.note ? ` (${state.note})` : "";
    byId("capture-state").textContent = state.running
      ? `Capturing ${who}: ${state.packets} packets, ${bytes(state.bytes)}…`
      : state.ready
        ? `Captured ${who}: ${state.packets} packets, ${bytes(state.bytes)}${note}.`
        : `Decrypted packets, as Wireshark and tshark open them${note}.`;
  };
  const captureAction = (path: string, body?: unknown) =>
    request("POST", path, body).then(renderCapture, (error: Error) => (byId("capture-state").textContent = `capture: ${error.message}`));
  byId("capture-start").addEventListener("click", () => void captureAction("/api/capture/start", { peer: byId<HTMLSelectElement>("capture-peer").value || null }));
  byId("capture-stop").addEventListener("click", () => void captureAction("/api/capture/stop"));

  // ---- live ----
  const reload = async () => {
    const [status, peerList, flowLists, capture] = await Promise.all([request("GET", "/api/status"), request("GET", "/api/peers"), request("GET", "/api/flows"), request("GET", "/api/capture")]);
    renderStatus(status);
    peers = peerList;
    renderPeers();
    flows.clear();
    for (const flow of [...flowLists.recent, ...flowLists.open] as Flow[]) flows.set(flow.id, flow);
    renderFlows();
    renderCapture(capture);
  };
  const events = new EventSource("/api/events");
  const connection = byId("connection");
  // On every (re)connection: what happened while the stream was down is reloaded.
  events.addEventListener("open", () => {
    connection.textContent = "live";
    connection.className = "pill live";
    reload().catch((error: Error) => (connection.textContent = `error: ${error.message}`));
  });
  events.addEventListener("error", () => {
    connection.textContent = "reconnecting…";
    connection.className = "pill";
  });
  events.addEventListener("stats", (event) => {
    const data = JSON.parse((event as MessageEvent).data) as { status: Status; peers: Peer[]; progress: { id: number; up: number; down: number }[] };
    renderStatus(data.status);
    peers = data.peers;
    renderPeers();
    for (const { id, up, down } of data.progress) {
      const flow = flows.get(id);
      if (flow && flow.end === undefined) Object.assign(flow, { up, down });
    }
    if ([...flows.values()].some((flow) => flow.end === undefined)) drawFlowsSoon(); // open flows' bytes and durations
    if (!byId<HTMLButtonElement>("capture-stop").disabled) request("GET", "/api/capture").then(renderCapture, () => {});
  });
  const onFlow = (event: Event) => {
    const flow = JSON.parse((event as MessageEvent).data) as Flow;
    flows.set(flow.id, flow);
    // Keep memory bounded on a page left open for days: drop the oldest finished flows.
    if (flows.size > 5000) for (const [id, old] of flows) if (old.end !== undefined && flows.size > 4000) flows.delete(id);
    drawFlowsSoon();
  };
  events.addEventListener("flow-open", onFlow);
  events.addEventListener("flow-end", onFlow);
}
