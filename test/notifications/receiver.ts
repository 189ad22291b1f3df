import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One request a receiver got. */
export interface Received {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** A loopback webhook receiver that records every request and answers as told. */
export interface TestReceiver {
  url: string;
  port: number;
  received: Received[];
  stop(): Promise<void>;
}

/** How a receiver answers its `n`-th request (0-based): a status, and optional headers. */
export type Answer = (n: number, req: Received) => { status: number; headers?: Record<string, string> };

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => resolve(body));
    req.on("error", reject);
  });
}

/** Starts a real `node:http` receiver on 127.0.0.1 (`port` 0: any free one). */
export async function startReceiver(
  answer: Answer = () => ({ status: 204 }),
  port = 0,
): Promise<TestReceiver> {
  const received: Received[] = [];
  const server: Server = createServer(async (req, res) => {
    const got: Received = {
      method: req.method ?? "",
      path: req.url ?? "",
      headers: Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : (v ?? "")]),
      ),
      body: await readBody(req),
    };
    const n = received.length;
    received.push(got);
    const { status, headers = {} } = answer(n, got);
    res.writeHead(status, headers);
    res.end(status === 204 ? undefined : "answer that Ferry must not keep");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}/hooks/ferry`,
    port: bound,
    received,
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
