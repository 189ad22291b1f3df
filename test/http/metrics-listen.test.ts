import { describe, expect, it } from "vitest";
import { startTestFerry } from "../support/ferry.ts";

// /metrics names credentials and refusal reasons: `server.metricsListen` moves it to an internal
// listener of its own, and the main listener then answers it like any unknown path.

describe("/metrics", () => {
  it("without server.metricsListen, is served on the main listener", async () => {
    const ferry = await startTestFerry();
    try {
      expect(ferry.metricsUrl).toBeUndefined();
      const res = await fetch(`${ferry.url}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain("ferry_http_request_duration_seconds");
    } finally {
      await ferry.close();
    }
  });

  it("with server.metricsListen, is served only by that listener", async () => {
    const ferry = await startTestFerry({
      server: { listen: "127.0.0.1:0", metricsListen: "127.0.0.1:0" },
    });
    try {
      expect(ferry.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(ferry.metricsUrl).not.toBe(ferry.url);
      // Traffic on the main listener is what the metrics describe.
      expect((await fetch(`${ferry.url}/healthz`)).status).toBe(200);
      const main = await fetch(`${ferry.url}/metrics`);
      expect(main.status).toBe(404);
      expect(await main.json()).toMatchObject({ code: "not_found" });
      const internal = await fetch(`${ferry.metricsUrl}/metrics`);
      expect(internal.status).toBe(200);
      expect(internal.headers.get("content-type")).toMatch(/^text\/plain/);
      const text = await internal.text();
      expect(text).toMatch(
        /ferry_http_request_duration_seconds_count\{[^}]*route="\/healthz"[^}]*status_code="200"/,
      );
      expect(text).toContain("ferry_process_cpu_seconds_total");
      // The internal listener serves nothing else.
      expect((await fetch(`${ferry.metricsUrl}/healthz`)).status).toBe(404);
      expect((await fetch(`${ferry.metricsUrl}/v1/verifications`, { method: "POST" })).status).toBe(404);
    } finally {
      await ferry.close();
    }
    // Closing stops both listeners.
    await expect(fetch(`${ferry.metricsUrl}/metrics`)).rejects.toThrow();
  });
});
