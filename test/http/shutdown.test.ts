import { describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { startTestFerry, type TestFerry } from "../support/ferry.ts";

/** Makes /readyz hang in its store ping until `release` is called; `entered` resolves once it hangs. */
function slowReadiness(ferry: TestFerry) {
  const originalPing = ferry.store.ping.bind(ferry.store);
  let release: () => void = () => {};
  let entered: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const inPing = new Promise<void>((resolve) => {
    entered = resolve;
  });
  ferry.store.ping = async () => {
    entered();
    await gate;
    await originalPing();
  };
  return { originalPing, release, inPing };
}

describe("graceful shutdown", () => {
  it("lets an in-flight request finish, then refuses new connections and closes the store", async () => {
    const clock = new FakeClock();
    const ferry = await startTestFerry({ server: { listen: "127.0.0.1:0", shutdownGrace: "5s" } }, { clock });
    const slow = slowReadiness(ferry);
    const inflight = fetch(`${ferry.url}/readyz`);
    await slow.inPing;
    const closing = ferry.close();
    await expect(fetch(`${ferry.url}/healthz`)).rejects.toThrow();
    slow.release();
    const res = await inflight;
    expect(res.status).toBe(200);
    await closing;
    await expect(slow.originalPing()).rejects.toThrow();
    expect(ferry.logs.some((l) => l.msg === "ferry stopped")).toBe(true);
  });

  it("cuts a request still running when server.shutdownGrace (by the injected clock) is over", async () => {
    const clock = new FakeClock();
    const ferry = await startTestFerry({ server: { listen: "127.0.0.1:0", shutdownGrace: "5s" } }, { clock });
    const slow = slowReadiness(ferry);
    const inflight = fetch(`${ferry.url}/readyz`).then(
      () => "answered",
      () => "cut",
    );
    await slow.inPing;
    let closed = false;
    const closing = ferry.close().then(() => {
      closed = true;
    });
    await clock.whenSleeping(1);
    await clock.advance(4_999);
    expect(closed).toBe(false);
    await clock.advance(1);
    expect(await inflight).toBe("cut");
    await closing;
    await expect(slow.originalPing()).rejects.toThrow();
    expect(ferry.logs.some((l) => l.msg === "ferry stopped")).toBe(true);
  });
});
