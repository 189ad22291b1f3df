import { describe, expect, it } from "vitest";
import { startTestFerry } from "../support/ferry.ts";

describe("graceful shutdown", () => {
  it("lets an in-flight request finish, then refuses new connections and closes the store", async () => {
    const ferry = await startTestFerry({ server: { listen: "127.0.0.1:0", shutdownGrace: "5s" } });
    // A slow request in flight when shutdown begins: /readyz on a store that answers slowly.
    const originalPing = ferry.store.ping.bind(ferry.store);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    ferry.store.ping = async () => {
      await gate;
      await originalPing();
    };
    const inflight = fetch(`${ferry.url}/readyz`);
    await new Promise((r) => setTimeout(r, 50));
    const closing = ferry.close();
    await new Promise((r) => setTimeout(r, 50));
    await expect(fetch(`${ferry.url}/healthz`)).rejects.toThrow();
    release();
    const res = await inflight;
    expect(res.status).toBe(200);
    await closing;
    await expect(originalPing()).rejects.toThrow();
    expect(ferry.logs.some((l) => l.msg === "ferry stopped")).toBe(true);
  });
});
