import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { LOOPBACK } from "./net.ts";

/** One request the proxy saw, in arrival order. */
export interface ProxiedRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The status answered (0 while in flight or when the proxy never answered). */
  status: number;
  /** Whether a fault rule handled it (instead of, or on top of, forwarding). */
  faulted: boolean;
}

/** What a fault rule does to a matching request. */
export type FaultAction =
  /** Answer with this status (and optional headers/body) instead of forwarding. */
  | { kind: "status"; status: number; headers?: Record<string, string>; body?: string }
  /** Forward, then flip one bit of the first byte of the answer's body (the length is kept). */
  | { kind: "corrupt" }
  /** Never answer (the connection stays open until the client gives up or the proxy stops). */
  | { kind: "stall" }
  /** Forward, send the headers and the first half of the body's first chunk, then stall. */
  | { kind: "stall-body" }
  /** Answer with a redirect to `location` (307 unless `status` says otherwise). */
  | { kind: "redirect"; location: string; status?: number }
  /** Forward, send the headers and the first half of the body's first chunk, then close the connection. */
  | { kind: "truncate" }
  /** Close the connection without answering (a connection reset, as the client sees it). */
  | { kind: "reset" }
  /** Forward only once `until` resolves; `onAnswered` runs once the upstream has answered. */
  | { kind: "hold"; until: Promise<unknown>; onAnswered?: () => void };

/** A fault: which requests it applies to, what it does, and how many times (default: always). */
export interface FaultRule {
  match: (req: { method: string; path: string }) => boolean;
  action: FaultAction;
  times?: number;
}

/** A running proxy; see {@link startFaultProxy}. */
export interface FaultProxy {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT`: the registry host of references that go through the proxy. */
  host: string;
  /** Every request seen, in order (a live array). */
  requests: ProxiedRequest[];
  addFault(rule: FaultRule): void;
  clearFaults(): void;
  clearRequests(): void;
  /** How many recorded requests match (all when no filter). */
  count(filter?: (r: ProxiedRequest) => boolean): number;
  stop(): Promise<void>;
}

async function listen(server: Server): Promise<{ url: string; host: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, LOOPBACK, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://${LOOPBACK}:${port}`, host: `${LOOPBACK}:${port}` };
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * Starts a loopback HTTP proxy in front of `upstream` (e.g. a test registry's URL) that records every
 * request and applies fault rules: wrong bytes, error statuses, stalls, redirects, held requests.
 * Requests are forwarded with their Host header unchanged, so the registry's upload `Location`s point
 * back at the proxy. Requests matching no rule pass through untouched.
 */
export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  const rules: FaultRule[] = [];
  const requests: ProxiedRequest[] = [];

  function take(method: string, path: string): FaultAction | undefined {
    const rule = rules.find((r) => (r.times === undefined || r.times > 0) && r.match({ method, path }));
    if (rule === undefined) return undefined;
    if (rule.times !== undefined) rule.times--;
    return rule.action;
  }

  function forward(
    req: IncomingMessage,
    res: ServerResponse,
    record: ProxiedRequest,
    action: FaultAction | undefined,
  ): void {
    const upstreamReq = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (upstreamRes) => {
        record.status = upstreamRes.statusCode ?? 0;
        if (action?.kind === "hold") action.onAnswered?.();
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        let first = true;
        upstreamRes.on("data", (chunk: Buffer) => {
          if (action?.kind === "corrupt" && first && chunk.length > 0) {
            chunk = Buffer.from(chunk);
            chunk[0] = chunk[0]! ^ 0x01;
          }
          if (action?.kind === "stall-body" || action?.kind === "truncate") {
            // Half of the first chunk: the body can never look complete, so the client must time out.
            if (first) {
              res.write(chunk.subarray(0, Math.ceil(chunk.length / 2)), () => {
                // Once the headers and some bytes are out, the break lands mid-body.
                if (action.kind === "truncate") setTimeout(() => res.socket?.destroy(), 50);
              });
            }
            upstreamRes.pause();
          } else {
            res.write(chunk);
          }
          first = false;
        });
        upstreamRes.on("end", () => {
          if (action?.kind !== "stall-body" && action?.kind !== "truncate") res.end();
        });
      },
    );
    upstreamReq.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstreamReq);
  }

  const server = createServer((req, res) => {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const action = take(method, path);
    const record: ProxiedRequest = {
      method,
      path,
      headers: req.headers,
      status: 0,
      faulted: action !== undefined,
    };
    requests.push(record);
    switch (action?.kind) {
      case "status":
        req.resume();
        record.status = action.status;
        res.writeHead(action.status, { "content-type": "application/json", ...action.headers });
        res.end(action.body ?? "");
        return;
      case "redirect":
        req.resume();
        record.status = action.status ?? 307;
        res.writeHead(record.status, { location: action.location });
        res.end();
        return;
      case "stall":
        req.resume();
        return;
      case "reset":
        req.resume();
        req.socket.destroy();
        return;
      case "hold":
        action.until.then(
          () => forward(req, res, record, action),
          () => res.destroy(),
        );
        return;
      default:
        forward(req, res, record, action);
    }
  });
  const { url, host } = await listen(server);
  return {
    url,
    host,
    requests,
    addFault: (rule) => {
      rules.push({ ...rule });
    },
    clearFaults: () => {
      rules.length = 0;
    },
    clearRequests: () => {
      requests.length = 0;
    },
    count: (filter) => (filter ? requests.filter(filter).length : requests.length),
    stop: () => close(server),
  };
}

/** A tiny loopback server that records requests and answers with `handler`; see {@link startStubServer}. */
export interface StubServer {
  url: string;
  host: string;
  requests: { method: string; path: string; headers: IncomingHttpHeaders }[];
  stop(): Promise<void>;
}

/**
 * Starts a recording HTTP server on loopback: blob storage behind a redirect, or an unlisted host
 * that must never be contacted.
 */
export async function startStubServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.writeHead(404);
    res.end();
  },
): Promise<StubServer> {
  const requests: StubServer["requests"] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? "GET", path: req.url ?? "/", headers: req.headers });
    handler(req, res);
  });
  const { url, host } = await listen(server);
  return { url, host, requests, stop: () => close(server) };
}
